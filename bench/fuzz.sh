#!/usr/bin/env bash
# Unseeded, 5x longer run of the API fuzz suite (tests/test_fuzz.py). CI runs the seeded profile;
# add whatever this finds to SEEDED in tests/test_fuzz.py, then fix it.
#   bash bench/fuzz.sh            # about a minute on 2 cores
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
WHYBOX_FUZZ=explore exec .venv/bin/python -m pytest tests/test_fuzz.py -q -p no:cacheprovider --hypothesis-show-statistics "$@"
