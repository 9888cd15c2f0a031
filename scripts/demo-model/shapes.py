"""Deterministic drawer of the demo model's dataset: coloured shapes on backgrounds, with captions.

Everything it draws is described by vocabulary.json (shared with the JavaScript judge in
test/helpers/shape-judge.js). Sample ``i`` of a split depends only on (split seed, i), so any
subset can be redrawn exactly.

    python shapes.py samples --out DIR --count 60 [--split test]   # PNG + captions.json (test data)
    python shapes.py eval-prompts --out eval-prompts.json          # held-out prompts for the generator
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
VOCAB = json.loads((HERE / "vocabulary.json").read_text())

COLOURS = VOCAB["colours"]
BACKGROUNDS = VOCAB["background_colours"]
PLAIN = VOCAB["plain_background"]
SHAPES = VOCAB["shapes"]
SIZES = VOCAB["sizes"]
POSITIONS = VOCAB["positions"]
POSITION_NAMES = list(POSITIONS)
JITTER = VOCAB["jitter"]
CAPTION = VOCAB["caption"]

# Seeds of the splits (numpy SeedSequence entropy). "eval" prompts are never drawn into "train".
SPLIT_SEEDS = {"train": 1501, "test": 1502, "eval": 1503, "vae": 1504, "lora": 1505, "inpaint": 1506}
STYLES = VOCAB["styles"]
SUPERSAMPLE = 4


def grid_cell(position: str) -> tuple[int, int]:
    """(column, row) of a named position on the 3x3 grid."""
    x, y = POSITIONS[position]
    return (0 if x < 1 / 3 else 2 if x > 2 / 3 else 1, 0 if y < 1 / 3 else 2 if y > 2 / 3 else 1)


def far_apart(p: str, q: str) -> bool:
    """Two objects go to cells two grid steps apart (so even two big shapes never overlap)."""
    (a, b), (c, d) = grid_cell(p), grid_cell(q)
    return max(abs(a - c), abs(b - d)) == 2


def caption_of(spec: dict) -> str:
    objs = [CAPTION["object"].format(**o) for o in spec["objects"]]
    text = CAPTION["join"].join(objs)
    if spec["background"] != PLAIN or spec.get("say_background"):
        text += CAPTION["background"].format(background=spec["background"])
    if spec.get("style"):
        text = STYLES[spec["style"]]["caption"].format(caption=text)
    return text


def sample_spec(rng: np.random.Generator, n_objects: int | None = None) -> dict:
    """One random scene description (what to draw, before jitter)."""
    n = n_objects or (1 if rng.random() < 0.5 else 2)
    objects = []
    colours = list(COLOURS)
    for _ in range(n):
        # with two objects, the first one cannot be in the centre (no cell is two steps from it)
        allowed = [p for p in POSITION_NAMES
                   if all(far_apart(p, o["position"]) for o in objects) and (n == 1 or grid_cell(p) != (1, 1))]
        pos = allowed[rng.integers(len(allowed))]
        colour = colours.pop(rng.integers(len(colours)))  # objects of one image have distinct colours
        objects.append({"size": list(SIZES)[rng.integers(len(SIZES))], "colour": colour,
                        "shape": SHAPES[rng.integers(len(SHAPES))], "position": pos})
    used = {o["colour"] for o in objects}
    if rng.random() < 0.5:
        bg = PLAIN
    else:
        choices = [b for b in BACKGROUNDS if b != PLAIN and b not in used]
        bg = choices[rng.integers(len(choices))]
    return {"objects": objects, "background": bg, "say_background": bool(bg == PLAIN and rng.random() < 0.3)}


def shape_mask(shape: str, size: int, box: tuple[float, float, float, float], stroke: float = 0.0) -> Image.Image:
    """Antialiased coverage mask ('L', size x size) of one shape inscribed in box (x0, y0, x1, y1), pixels;
    with stroke > 0 only the band of that width (pixels) inside the shape's edge: the shape's outline."""
    s = SUPERSAMPLE
    big = Image.new("L", (size * s, size * s), 0)
    d = ImageDraw.Draw(big)
    x0, y0, x1, y1 = (v * s for v in box)
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    if shape == "circle":
        d.ellipse((x0, y0, x1, y1), fill=255)
    elif shape == "square":
        m = 0.07 * w  # a square looks bigger than a circle of the same box
        d.rectangle((x0 + m, y0 + m, x1 - m, y1 - m), fill=255)
    elif shape == "triangle":
        d.polygon([(cx, y0), (x1, y1 - 0.06 * h), (x0, y1 - 0.06 * h)], fill=255)
    elif shape == "star":
        pts = []
        for k in range(10):
            r = (0.5 if k % 2 == 0 else 0.5 * 0.42) * w
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + r * math.cos(a), cy + 0.08 * h + r * math.sin(a)))
        d.polygon(pts, fill=255)
    elif shape == "heart":
        t = np.linspace(0, 2 * math.pi, 200, endpoint=False)
        hx = 16 * np.sin(t) ** 3
        hy = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        hx = (hx - hx.min()) / (hx.max() - hx.min())
        hy = (hy - hy.min()) / (hy.max() - hy.min())
        d.polygon([(x0 + a * w, y0 + b * h) for a, b in zip(hx, hy)], fill=255)
    elif shape == "ring":
        d.ellipse((x0, y0, x1, y1), fill=255)
        m = 0.22 * w
        d.ellipse((x0 + m, y0 + m, x1 - m, y1 - m), fill=0)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    if stroke > 0:
        from scipy.ndimage import distance_transform_edt

        inside = np.asarray(big) > 127
        band = inside & (distance_transform_edt(inside) <= stroke * s)
        big = Image.fromarray((band * 255).astype(np.uint8))
    return big.resize((size, size), Image.BOX)


def render(spec: dict, size: int, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """Draws a scene; returns (uint8 HxWx3, objects with their drawn boxes in pixels)."""
    img = np.empty((size, size, 3), np.float32)
    img[:] = BACKGROUNDS[spec["background"]]
    drawn = []
    for o in spec["objects"]:
        side = SIZES[o["size"]] * (1 + rng.uniform(-1, 1) * JITTER["size"]) * size
        px, py = POSITIONS[o["position"]]
        cx = (px + rng.uniform(-1, 1) * JITTER["position"]) * size
        cy = (py + rng.uniform(-1, 1) * JITTER["position"]) * size
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        stroke = 0.0
        if spec.get("style"):
            rule = STYLES[spec["style"]]
            stroke = max(rule["min_stroke"] * size, rule["stroke"] * side)
        a = np.asarray(shape_mask(o["shape"], size, box, stroke), np.float32)[..., None] / 255.0
        img = img * (1 - a) + np.asarray(COLOURS[o["colour"]], np.float32) * a
        drawn.append({**o, "box": [round(v, 2) for v in box]})
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), drawn


def rng_for(split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([SPLIT_SEEDS[split], index])


def eval_prompts(n_single: int = 100, n_double: int = 50) -> list[dict]:
    """Held-out prompts (never drawn into the training split): n_single one-object, n_double two-object."""
    rng = np.random.default_rng(SPLIT_SEEDS["eval"])
    out, seen = [], set()
    for n, count in ((1, n_single), (2, n_double)):
        k = 0
        while k < count:
            spec = sample_spec(rng, n)
            cap = caption_of(spec)
            if cap in seen:
                continue
            seen.add(cap)
            out.append({"prompt": cap, "objects": spec["objects"], "background": spec["background"]})
            k += 1
    return out


_HELD_OUT: set[str] | None = None


def held_out() -> set[str]:
    global _HELD_OUT
    if _HELD_OUT is None:
        _HELD_OUT = {p["prompt"] for p in eval_prompts()}
    return _HELD_OUT


def sample(split: str, index: int, size: int = 128, style: str | None = None) -> tuple[np.ndarray, str, dict]:
    """Sample ``index`` of ``split``: (image uint8 HxWx3, caption, spec with drawn boxes), drawn in ``style``
    (a key of vocabulary.json "styles") if given. Training samples whose caption is a held-out eval prompt
    are redrawn (deterministically)."""
    rng = rng_for(split, index)
    while True:
        spec = sample_spec(rng)
        if style:
            spec["style"] = style
        cap = caption_of(spec)
        if split not in ("train", "lora", "inpaint") or cap not in held_out():
            break
    img, drawn = render(spec, size, rng)
    return img, cap, {**spec, "objects": drawn}


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("samples")
    s.add_argument("--out", required=True)
    s.add_argument("--count", type=int, default=60)
    s.add_argument("--split", default="test")
    s.add_argument("--size", type=int, default=128)
    s.add_argument("--style", choices=list(STYLES), default=None)
    e = sub.add_parser("eval-prompts")
    e.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.cmd == "samples":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        meta = []
        for i in range(args.count):
            img, cap, spec = sample(args.split, i, args.size, args.style)
            name = f"{args.split}-{i:03d}.png"
            Image.fromarray(img).save(out / name, optimize=True)
            meta.append({"file": name, "caption": cap, **spec})
        (out / "captions.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(f"wrote {len(meta)} samples to {out}")
    else:
        prompts = eval_prompts()
        Path(args.out).write_text(json.dumps(prompts, indent=1) + "\n")
        print(f"wrote {len(prompts)} prompts to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
