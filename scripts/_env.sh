# Sourced by scripts/demo.sh and scripts/test.sh: create .venv and install whybox into it,
# idempotently (re-installs only when pyproject.toml or this file changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV="$ROOT/.venv"
EXTRAS="${WHYBOX_EXTRAS:-test}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.whybox-installed"
WANT="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/_env.sh" | sha256sum | cut -d' ' -f1) $EXTRAS"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    PIPARGS=(-q --disable-pip-version-check)
    [ -d /opt/wheels ] && PIPARGS+=(--find-links /opt/wheels)
    # torch is an optional extra for users; set-up pins the CPU build 2.13.0 (other versions pull CUDA).
    "$VENV/bin/python" -m pip install "${PIPARGS[@]}" "torch==2.13.0"
    "$VENV/bin/python" -m pip install "${PIPARGS[@]}" -e "$ROOT[$EXTRAS]"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
