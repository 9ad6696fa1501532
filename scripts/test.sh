#!/usr/bin/env bash
# Runs the whole test suite in .venv (created and filled on first use).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
exec python -m pytest "$@"
