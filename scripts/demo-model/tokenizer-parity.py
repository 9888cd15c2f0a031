"""Tokenizer parity: the ids of the training tokenizer (the CLIPTokenizer saved by components.py) against the
exported openvino-tokenizers IR, padded the way the engine pads (native/engine/models/tokenizer.cpp: the IR's
ids, cut or padded to max_position_embeddings with the pad_token_id of the IR's rt_info).

    cd scripts/demo-model && python tokenizer-parity.py EXPORTED_DIR [--cache ../../.cache/demo-train]

Exit status 1 when any prompt differs.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import openvino as ov
import openvino_tokenizers  # noqa: F401  (registers the tokenizer operations)

import components as C

HERE = Path(__file__).resolve().parent
EXTRA = ["A BIG Red Circle", "a big red circle, on a white background!", "", "a zebra on the moon",
         "a big  red   circle", "outlined"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("--cache", default=str(HERE / ".." / ".." / ".cache" / "demo-train"))
    a = ap.parse_args()
    tok = C.make_tokenizer(Path(a.cache))
    model = ov.Core().read_model(str(Path(a.export) / "tokenizer" / "openvino_tokenizer.xml"))
    pad = int(model.get_rt_info("pad_token_id").astype(int))
    compiled = ov.Core().compile_model(model, "CPU")
    prompts = [p["prompt"] for p in json.loads((HERE / "eval-prompts.json").read_text())] + EXTRA
    bad = 0
    for p in prompts:
        want = C.tokenize(tok, [p])[0].numpy()
        ids = np.asarray(compiled([p])["input_ids"][0])[: C.MAX_LEN]
        got = np.concatenate([ids, np.full(C.MAX_LEN - len(ids), pad)])
        if not np.array_equal(want, got):
            bad += 1
            print(json.dumps({"prompt": p, "training": want.tolist()[:24], "exported": got.tolist()[:24]}))
    print(json.dumps({"prompts": len(prompts), "differ": bad, "bos": tok.bos_token_id, "eos": tok.eos_token_id,
                      "pad_training": tok.pad_token_id, "pad_exported_rt_info": pad}))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
