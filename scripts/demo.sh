#!/usr/bin/env bash
# Runs whybox's main job on a built-in default: `whybox demo` (model trained on a scikit-learn dataset).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
exec whybox demo "$@"
