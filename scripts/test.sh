#!/usr/bin/env bash
# Runs the whole test suite in .venv (created and filled on first use).
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"
# The dashboard's browser tests drive Debian's chromium (never a downloaded browser): install it with
# apt when it is missing and we may (root, or passwordless sudo); otherwise those tests skip.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || { sudo -n true 2>/dev/null && SUDO="sudo -n"; } || SUDO="none"
    if [ "$SUDO" != "none" ]; then
        echo "installing Debian's chromium for the browser tests (apt)..." >&2
        ( $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium ) \
            >/dev/null 2>&1 || echo "could not install chromium; the browser tests will skip" >&2
    fi
fi
exec python -m pytest "$@"
