# Sourced by bin/* scripts: create/refresh .venv quietly and idempotently.
# Usage: . bin/_venv.sh [extra]   (extra = "dev" to include test tools)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
EXTRA="${1:-}"
STAMP="$VENV/.zhtools-stamp${EXTRA:+-$EXTRA}"
want="$(cat "$ROOT/pyproject.toml" | sha1sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
  echo "zhtools: creating $VENV (first run; installs torch==2.13.0 CPU and dependencies)" >&2
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
  LOG="$VENV/install.log"
  pipi() { "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" >>"$LOG" 2>&1; }
  if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    pipi "torch==2.13.0" || { tail -20 "$LOG" >&2; echo "zhtools: torch install failed ($LOG)" >&2; exit 1; }
  fi
  spec="$ROOT"
  [ -n "$EXTRA" ] && spec="$ROOT[$EXTRA]"
  pipi -e "$spec" || { tail -20 "$LOG" >&2; echo "zhtools: install failed ($LOG)" >&2; exit 1; }
  "$VENV/bin/python" -c "import zhtools, torch, transformers" || { echo "zhtools: install failed" >&2; exit 1; }
  echo "$want" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
