# shellcheck shell=bash
# pinned_venv NAME VENV REQUIREMENTS [PYTHON]: makes VENV hold exactly the pins of REQUIREMENTS, for the generator
# scripts (scripts/fixtures/make-fixtures.sh, scripts/demo-model/make-demo-model.sh). Checks first that the
# requirements' openvino pins equal package.json's "openvino" field (the single source of truth). The venv is
# reused while the requirements file and the Python minor version are unchanged (a stamp records both).
pinned_venv() {
  local name="$1" venv="$2" req="$3" py="${4:-python3}"
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  command -v "$py" >/dev/null 2>&1 || { echo "$name: ERROR: '$py' not found on PATH (Debian: apt-get install python3 python3-venv)." >&2; return 1; }
  "$py" -c 'import venv, ensurepip' >/dev/null 2>&1 || { echo "$name: ERROR: Python venv/ensurepip missing (Debian: apt-get install python3-venv)." >&2; return 1; }
  "$py" "$root/scripts/check-openvino-pins.py" "$req" || return 1
  local stamp="$venv/.pinned-stamp" want
  want="$(sha256sum "$req" | cut -c1-32) $("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "$name: using $venv" >&2
    return 0
  fi
  echo "$name: creating $venv (pinned, see $req)" >&2
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv" || { echo "$name: ERROR: '$py -m venv' failed" >&2; return 1; }
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -r "$req" || { echo "$name: ERROR: pip install failed (is PyPI reachable?)" >&2; return 1; }
  echo "$want" > "$stamp"
}
