#!/usr/bin/env bash
# Idempotently create .cache/oracle-venv with the pinned openvino-genai oracle.
#   openvino-genai / openvino / openvino-tokenizers versions come from package.json ("openvino" field);
#   numpy / pillow pins come from test/oracle/requirements.txt.
# Usage: bash test/oracle/setup.sh        (env ORACLE_VENV overrides the venv location)
# Prints the venv's python path as the last line on success.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${ORACLE_VENV:-$ROOT/.cache/oracle-venv}"
REQ="$ROOT/test/oracle/requirements.txt"
PY="${PYTHON:-python3}"

die() { echo "oracle setup: ERROR: $*" >&2; exit 1; }

command -v "$PY" >/dev/null 2>&1 || die "'$PY' not found on PATH. Install Python 3.9+ (Debian: apt-get install python3 python3-venv python3-pip)."
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || die "$("$PY" --version 2>&1) is too old; Python >= 3.9 is required."
"$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 \
  || die "the Python 'venv'/'ensurepip' modules are missing (Debian: apt-get install python3-venv)."

# Read pins from package.json with python (node may not be on PATH for every caller).
read -r OV_PIN TOK_PIN GENAI_PIN < <("$PY" - "$ROOT/package.json" <<'PYEOF'
import json, sys
pins = json.load(open(sys.argv[1]))["openvino"]
print(pins["openvino"], pins["openvino-tokenizers"], pins["openvino-genai"])
PYEOF
) || die "cannot read the 'openvino' pins from $ROOT/package.json"
[ -n "${GENAI_PIN:-}" ] || die "empty openvino-genai pin in package.json"

STAMP="$VENV/.oracle-stamp"
WANT_STAMP="genai=$GENAI_PIN ov=$OV_PIN tok=$TOK_PIN req=$(sha256sum "$REQ" | cut -c1-16)"

verify() {
  "$VENV/bin/python" - "$OV_PIN" "$TOK_PIN" "$GENAI_PIN" <<'PYEOF'
import sys
from importlib.metadata import version
want = dict(zip(["openvino", "openvino-tokenizers", "openvino-genai"], sys.argv[1:4]))
bad = [f"{k}: installed {version(k)}, package.json pins {v}" for k, v in want.items() if version(k) != v]
if bad:
    print("oracle setup: ERROR: version mismatch:\n  " + "\n  ".join(bad), file=sys.stderr)
    sys.exit(1)
import openvino_genai, openvino_tokenizers  # noqa: F401  (import check)
PYEOF
}

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] && verify 2>/dev/null; then
  echo "oracle setup: $VENV is up to date ($WANT_STAMP)" >&2
  echo "$VENV/bin/python"
  exit 0
fi

echo "oracle setup: creating $VENV with openvino-genai==$GENAI_PIN" >&2
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  "$PY" -m venv "$VENV" || die "'$PY -m venv' failed (Debian: apt-get install python3-venv)."
fi
"$VENV/bin/python" -m pip --version >/dev/null 2>&1 || die "pip is not available in $VENV (Debian: apt-get install python3-pip python3-venv)."

"$VENV/bin/python" -m pip install --disable-pip-version-check -q \
  "openvino-genai==$GENAI_PIN" "openvino==$OV_PIN" "openvino-tokenizers==$TOK_PIN" -r "$REQ" \
  || die "pip install failed (is PyPI reachable?)"

verify || exit 1
echo "$WANT_STAMP" > "$STAMP"
echo "oracle setup: ok ($("$VENV/bin/python" -c 'import openvino_genai as g; print("openvino_genai", g.__version__)'))" >&2
echo "$VENV/bin/python"
