"""Exits non-zero unless a requirements file pins openvino and openvino-tokenizers exactly as package.json's
"openvino" field does (the single source of the runtime versions). Used by the venv set-up of
scripts/fixtures/make-fixtures.sh and scripts/demo-model/make-demo-model.sh.

    python3 scripts/check-openvino-pins.py <requirements.txt>
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
requirements = Path(sys.argv[1])
pins = json.loads((ROOT / "package.json").read_text())["openvino"]
req = {}
for line in requirements.read_text().splitlines():
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)", line)
    if m:
        req[m.group(1).lower()] = m.group(2)
bad = [f"{k}: {requirements.name} has {req.get(k)!r}, package.json pins {pins[k]!r}"
       for k in ("openvino", "openvino-tokenizers") if req.get(k) != pins[k]]
if bad:
    sys.exit("ERROR: pins out of sync:\n  " + "\n  ".join(bad) + f"\n  Update {requirements} to the package.json pins.")
