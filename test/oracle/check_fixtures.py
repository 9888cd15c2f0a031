#!/usr/bin/env python3
"""Check that every fixture in test/fixtures runs in the openvino-genai oracle.

For every fixture folder (a folder with model_index.json):
  * dedicated inpainting models (…InpaintPipeline, FluxFillPipeline): inpainting only;
  * all others: text2image, image2image and inpainting (RGB mask, white square = repaint);
  * text2image twice with the same seed (must be byte-identical), with num_images_per_prompt=2 and
    another seed (must differ);
  * UNet models: each scheduler type set with Scheduler.from_config (known oracle rejections are expected);
    SD3/FLUX: 10 steps with the default TaylorSeer cache vs. taylorseer off (must differ);
  * where test/fixtures/loras/<fixture>-*.safetensors exist: each adapter on text2image vs. the same
    LoRA-enabled pipeline with an empty AdapterConfig; a blend of adapters a+b; alpha 0; and the kohya
    adapter on image2image / inpainting.
Assertions: output shape, output not constant, adapters change (or, for the PEFT files whose names the
oracle does not match, do not change) the output.

Run with the oracle venv:  .cache/oracle-venv/bin/python test/oracle/check_fixtures.py [--only sd15,sdxl]
Prints a table and a closing line "N passed, N failed"; exit code 1 if anything failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle import Oracle  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SIZE = 64
STEPS = 3
PROMPT = "a photo of an astronaut riding a horse on mars"

# LoRA naming formats in test/fixtures/loras and whether openvino-genai applies them.
# "peft" = full-pipeline PEFT keys ("unet.…lora_A.weight", "text_encoder.…"): the oracle prefixes every
# non-kohya key with "lora_unet." and never matches "lora_unet.unet.…" to a layer, so it is a no-op.
LORA_EXPECT_CHANGE = {"kohya": True, "peft-unet": True, "diffusers-legacy": True, "peft": False}
# Fixtures whose pipeline accepts adapters and applies none (openvino-genai 2026.4.1's ZImagePipeline).
LORA_IGNORED_BY_ORACLE = {"z-image"}


# Classes the oracle runs for text-to-image and image-to-image only: no inpainting pipeline, and no TaylorSeer cache
# (FLUX.2 klein accepts the config but it changes nothing).
NO_INPAINTING_CLASSES = ("ZImage", "Flux2Klein", "QwenImage")

# (fixture, scheduler type) combinations the oracle rejects; the value is part of the expected message.
EXPECTED_SCHEDULER_ERRORS = {
    ("lcm", "PNDM"): "skip_prk_steps",  # LCM repos carry no skip_prk_steps (PNDM requires true)
    ("sd2-vpred", "LCM"): "segfaults",  # refused by oracle.py: LCM + v_prediction crashes openvino-genai
}


def make_inputs(d: Path) -> tuple[str, str]:
    rng = np.random.default_rng(1234)
    from PIL import Image

    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).astype(np.float32)
    img = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((SIZE, SIZE, 3), np.uint8)
    mask[SIZE // 4: 3 * SIZE // 4, SIZE // 4: 3 * SIZE // 4] = 255
    ip, mp = d / "image.png", d / "mask.png"
    Image.fromarray(img).save(ip)
    Image.fromarray(mask).save(mp)
    return str(ip), str(mp)


class Checker:
    def __init__(self, tmp: Path):
        self.oracle = Oracle()
        self.tmp = tmp
        self.rows = []
        self.passed = 0
        self.failed = 0
        self.n = 0

    def gen(self, req: dict):
        self.n += 1
        out = self.tmp / f"out{self.n}.raw"
        res = self.oracle.run(dict(req, out=str(out)))
        arr = np.fromfile(out, np.uint8).reshape(res["shape"])
        out.unlink()
        return res, arr

    def record(self, fixture, case, ok, info, ms=None):
        self.rows.append((fixture, case, "ok" if ok else "FAIL", "" if ms is None else f"{ms:.0f}", info))
        if ok:
            self.passed += 1
        else:
            self.failed += 1

    def basic(self, fixture, case, req, n=1):
        try:
            res, arr = self.gen(req)
        except Exception as e:
            self.record(fixture, case, False, f"{type(e).__name__}: {e}"[:200])
            return None
        want = [n, SIZE, SIZE, 3]
        problems = []
        if res["shape"] != want:
            problems.append(f"shape {res['shape']} != {want}")
        std = float(arr.astype(np.float32).std())
        uniq = len(np.unique(arr))
        if std < 2.0 or uniq < 16:
            problems.append(f"nearly constant output (std {std:.2f}, {uniq} values)")
        self.record(fixture, case, not problems,
                    "; ".join(problems) or f"shape {res['shape']} std {std:.1f} sha {res['sha256'][:10]}", res["ms"])
        return arr

    def differ(self, fixture, case, a, b, expect_change=True, min_mean=1.0):
        if a is None or b is None:
            self.record(fixture, case, False, "missing input result")
            return
        d = np.abs(a.astype(np.int32) - b.astype(np.int32))
        changed = bool(d.max() > 0)
        info = f"max|d| {d.max()} mean|d| {d.mean():.2f}"
        ok = changed if expect_change else not changed
        if expect_change and changed and d.mean() < min_mean:
            ok, info = False, info + " (change too small)"
        self.record(fixture, case, ok, info + ("" if ok else f" (expected {'a' if expect_change else 'no'} change)"))


def fixture_dirs(root: Path, only):
    for p in sorted(root.iterdir()):
        if (p / "model_index.json").is_file() and (not only or p.name in only):
            yield p


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", default=str(ROOT / "test" / "fixtures"))
    ap.add_argument("--only", default="", help="comma-separated fixture names")
    ap.add_argument("--json", help="also write the table as JSON to this path")
    args = ap.parse_args()
    only = {s for s in args.only.split(",") if s}
    root = Path(args.fixtures)
    t_start = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="check-fixtures-") as td:
        tmp = Path(td)
        image, mask = make_inputs(tmp)
        ck = Checker(tmp)
        dirs = list(fixture_dirs(root, only))
        if not dirs:
            print(f"no fixtures found in {root}", file=sys.stderr)
            return 1
        for fx in dirs:
            name = fx.name
            ck.oracle.pipes.clear()  # keep memory bounded: pipelines are only reused within one fixture
            cls = json.loads((fx / "model_index.json").read_text())["_class_name"]
            base = {"model": str(fx), "prompt": PROMPT, "num_inference_steps": STEPS, "width": SIZE, "height": SIZE,
                    "rng_seed": 42}
            i2i = dict(base, pipeline="image2image", image=image, strength=0.8)
            inp = dict(base, pipeline="inpainting", image=image, mask=mask)
            if "Inpaint" in cls or "Fill" in cls:
                kinds = ["inpainting"]
            elif cls.startswith(NO_INPAINTING_CLASSES):
                kinds = ["text2image", "image2image"]  # the oracle has no inpainting for these
            else:
                kinds = ["text2image", "image2image", "inpainting"]
            if "text2image" in kinds:
                t2i = ck.basic(name, "text2image", base)
                again = ck.basic(name, "text2image (repeat)", base)
                if t2i is not None and again is not None:
                    same = np.array_equal(t2i, again)
                    ck.record(name, "text2image deterministic", same, "identical bytes" if same else "outputs differ")
                ck.basic(name, "text2image num_images_per_prompt=2", dict(base, num_images_per_prompt=2), n=2)
                other = ck.basic(name, "text2image rng_seed=7", dict(base, rng_seed=7))
                ck.differ(name, "seed changes output", t2i, other)
            if "image2image" in kinds:
                ck.basic(name, "image2image strength 0.8", i2i)
            if "inpainting" in kinds:
                ck.basic(name, "inpainting", inp)

            # scheduler switching via Scheduler.from_config(<model>/scheduler/scheduler_config.json, Type)
            sched_req = inp if "Inpaint" in cls or "Fill" in cls else base
            if (fx / "unet").is_dir():
                for st in ("DDIM", "EULER_DISCRETE", "EULER_ANCESTRAL_DISCRETE", "PNDM", "LCM"):
                    case = f"scheduler {st}"
                    expected_err = EXPECTED_SCHEDULER_ERRORS.get((name, st))
                    if expected_err:
                        try:
                            ck.gen(dict(sched_req, scheduler=st, num_inference_steps=2))
                            ck.record(name, case, False, f"expected an error containing {expected_err!r}")
                        except Exception as e:
                            ok = expected_err in str(e)
                            ck.record(name, case + " (expected error)", ok, str(e).splitlines()[-1][:90])
                    else:
                        ck.basic(name, case, dict(sched_req, scheduler=st, num_inference_steps=2))
            elif "text2image" in kinds and not cls.startswith(NO_INPAINTING_CLASSES):  # nor a TaylorSeer cache
                # TaylorSeer is on by default for SD3/FLUX text2image and active from 9 steps on
                ts_on = ck.basic(name, "text2image 10 steps (TaylorSeer default)", dict(base, num_inference_steps=10))
                ts_off = ck.basic(name, "text2image 10 steps taylorseer off", dict(base, num_inference_steps=10,
                                                                                  taylorseer=False))
                # (with random weights the cached-step prediction is close: only require a change)
                ck.differ(name, "TaylorSeer default changes output", ts_on, ts_off, min_mean=0.0)

            loras = sorted((root / "loras").glob(f"{name}-*.safetensors")) if (root / "loras").is_dir() else []
            if not loras or "text2image" not in kinds:
                continue
            by = {}
            for p in loras:
                fmt, variant = p.stem[len(name) + 1:].rsplit("-", 1)
                by.setdefault(fmt, {})[variant] = str(p)
            for fmt, files in sorted(by.items()):
                # Order matters: openvino-genai 2026.4.1 (MODE_DYNAMIC) returns an all-zero image when a LoRA
                # node goes rank>0 -> rank 0 -> rank>0 across generate() calls (e.g. A, then [], then A again;
                # or A, then B, then A when B covers fewer layers). Each format therefore gets a fresh pipeline
                # and the sequence below never re-enables a node after it was switched off. The quirk itself
                # is probed separately at the end ("known oracle issue").
                ck.oracle.pipes.clear()
                expect = LORA_EXPECT_CHANGE.get(fmt, True) and name not in LORA_IGNORED_BY_ORACLE
                pool = sorted(files.values())
                lora = lambda *pairs: dict(base, adapters=[{"path": files[v], "alpha": a} for v, a in pairs],
                                           adapters_pool=pool)
                off = ck.basic(name, f"lora {fmt}: empty AdapterConfig", lora())
                blend = None
                if {"a", "b"} <= set(files):
                    blend = ck.basic(name, f"lora {fmt} blend a:0.7 + b:0.5", lora(("a", 0.7), ("b", 0.5)))
                outs = {}
                for v in sorted(files):
                    outs[v] = ck.basic(name, f"lora {fmt}-{v} alpha 1", lora((v, 1.0)))
                    ck.differ(name, f"lora {fmt}-{v} changes output", outs[v], off, expect_change=expect)
                    if v == "a" and fmt == "kohya":
                        half = ck.basic(name, f"lora {fmt}-a alpha 0.5", lora(("a", 0.5)))
                        ck.differ(name, f"lora {fmt}-a alpha 0.5 != alpha 1", half, outs["a"])
                        a0 = ck.basic(name, f"lora {fmt}-a alpha 0", lora(("a", 0.0)))
                        ck.differ(name, f"lora {fmt}-a alpha 0 == empty config", a0, off, expect_change=False)
                if blend is not None and expect:
                    ck.differ(name, f"lora {fmt} blend differs from a", blend, outs["a"])
                    ck.differ(name, f"lora {fmt} blend differs from b", blend, outs["b"])
                if fmt == "kohya":
                    for kind, req in (("image2image", i2i), ("inpainting", inp)):
                        kref = ck.basic(name, f"{kind} + lora {fmt}: empty", dict(req, adapters=[], adapters_pool=pool))
                        kon = ck.basic(name, f"{kind} + lora {fmt}-a",
                                       dict(req, adapters=[{"path": files["a"], "alpha": 1.0}], adapters_pool=pool))
                        ck.differ(name, f"{kind} + lora {fmt}-a changes output", kon, kref)
                    # probe the oracle quirk described above (reported, not counted)
                    ck.oracle.pipes.clear()
                    seq = [ck.gen(lora(("a", 1.0)))[1], ck.gen(lora())[1], ck.gen(lora(("a", 1.0)))[1]]
                    broken = float(seq[2].std()) < 1.0
                    same = np.array_equal(seq[0], seq[2])
                    ck.rows.append((name, "known oracle issue: lora a -> [] -> a", "info", "",
                                    "3rd image all-zero (quirk present)" if broken else
                                    ("3rd image == 1st (quirk gone)" if same else "3rd image differs from 1st")))

    w = [max(len(str(r[i])) for r in ck.rows + [("fixture", "case", "result", "ms", "info")]) for i in range(5)]
    header = ("fixture", "case", "result", "ms", "info")
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(header)))
    print("  ".join("-" * w[i] for i in range(5)))
    for r in ck.rows:
        print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))
    elapsed = time.perf_counter() - t_start
    print(f"\nchecked {len(dirs)} fixtures in {elapsed:.1f}s")
    if args.json:
        Path(args.json).write_text(json.dumps([dict(zip(header, r)) for r in ck.rows], indent=1))
    print(f"{ck.passed} passed, {ck.failed} failed")
    return 1 if ck.failed else 0


if __name__ == "__main__":
    sys.exit(main())
