"""Assembles the demo model as a diffusers StableDiffusionPipeline and exports it with the real exporter
(`optimum-cli export openvino --task text-to-image`), like the fixtures.

    python export.py --cache .cache/demo-train --out models/demo [--weight-format fp32|int8]
    python export.py --cache .cache/demo-train --inpaint --out models/demo-inpaint   # the 9-channel variant
    python export.py --untrained --out /tmp/demo-untrained       # random weights: checks the export path
    python export.py --cache C --out DIR --checkpoint COPY.pt [--raw]   # a saved checkpoint; online weights
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

import components as C


def build_pipeline(tok, text_encoder, vae, unet):
    """StableDiffusionPipeline, or StableDiffusionInpaintPipeline for a 9-channel UNet."""
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    cls = StableDiffusionInpaintPipeline if unet.config.in_channels == 9 else StableDiffusionPipeline
    return cls(vae=vae, text_encoder=text_encoder, tokenizer=tok, unet=unet, scheduler=C.make_pipeline_scheduler(),
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def load_trained(cache: Path, raw: bool = False, checkpoint: Path | None = None):
    """Tokenizer, trained text encoder + UNet and VAE from the cache: the base model (C.base_weights: the layout
    fine-tune's weights when it has run, else the EMA), or a unet checkpoint (its EMA, or the online weights
    with raw)."""
    from diffusers import AutoencoderKL

    tok = C.make_tokenizer(cache)
    vae = AutoencoderKL.from_pretrained(cache / "vae" / "final")
    te, unet = C.make_text_encoder(tok), C.make_unet()
    if checkpoint or raw:
        ckpt = torch.load(checkpoint or cache / "unet" / "checkpoint.pt", map_location="cpu", weights_only=False)
        src = ckpt if raw else ckpt["ema"]
        te_state, unet_state = src["text_encoder"], src["unet"]
        info = {"step": ckpt["step"], "samples": ckpt["samples"], "weights": "raw" if raw else "ema"}
    else:
        te_state, unet_state, info = C.base_weights(cache)
    te.load_state_dict(te_state)
    unet.load_state_dict(unet_state)
    return tok, te, vae, unet, info


def optimum_cli() -> str:
    cand = Path(sys.executable).with_name("optimum-cli")
    return str(cand) if cand.exists() else "optimum-cli"


def export(pipe, out: Path, weight_format: str = "fp32", name: str = "ov-diffusion/demo") -> None:
    task = "inpainting" if pipe.unet.config.in_channels == 9 else "text-to-image"
    with tempfile.TemporaryDirectory(prefix="demo-export-") as tmp:
        src, dst = Path(tmp) / "diffusers", Path(tmp) / "ov"
        pipe.save_pretrained(src, safe_serialization=True)
        cmd = [optimum_cli(), "export", "openvino", "--model", str(src), "--library", "diffusers",
               "--task", task, "--weight-format", weight_format, str(dst)]
        print("$", " ".join(cmd), flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:] + "\n" + r.stderr[-8000:] + "\n")
            raise SystemExit(f"optimum-cli export failed (exit {r.returncode})")
        for f in sorted(dst.rglob("*.json")):  # configs record the temp path: make it stable
            t = f.read_text()
            if str(src) in t:
                f.write_text(t.replace(str(src), name))
        missing = [f for f in ("model_index.json", "scheduler/scheduler_config.json", "unet/openvino_model.xml",
                               "vae_decoder/openvino_model.xml", "vae_encoder/openvino_model.xml",
                               "text_encoder/openvino_model.xml", "tokenizer/openvino_tokenizer.xml",
                               "tokenizer/openvino_detokenizer.xml") if not (dst / f).exists()]
        if missing:
            raise SystemExit(f"export is missing {missing}")
        out.mkdir(parents=True, exist_ok=True)
        for child in out.iterdir():  # replace the export, keep the model card and notes (*.md)
            if child.suffix != ".md":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        shutil.copytree(dst, out, dirs_exist_ok=True)
        # what the model was trained to draw, shipped beside it (the server's startup line reads it)
        shutil.copy(Path(__file__).resolve().parent / "vocabulary.json", out / "vocabulary.json")
    sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(out.rglob("*"))
             if p.is_file() and p.suffix != ".md"}
    print(json.dumps({"total_bytes": sum(sizes.values()), "files": sizes}, indent=1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=".cache/demo-train")
    ap.add_argument("--out", required=True)
    ap.add_argument("--weight-format", default="fp32")
    ap.add_argument("--untrained", action="store_true")
    ap.add_argument("--raw", action="store_true", help="export the online weights, not the EMA")
    ap.add_argument("--checkpoint", help="a copy of unet/checkpoint.pt to export instead")
    ap.add_argument("--inpaint", action="store_true", help="the inpainting variant (inpaint/final) instead of the base")
    args = ap.parse_args()
    torch.manual_seed(0)
    cache = Path(args.cache)
    if args.untrained:
        tok = C.make_tokenizer(cache)
        te, vae, unet = C.make_text_encoder(tok), C.make_vae(), C.make_unet()
        info = {"untrained": True}
    else:
        tok, te, vae, unet, info = load_trained(cache, args.raw, Path(args.checkpoint) if args.checkpoint else None)
    if args.inpaint:
        from diffusers import UNet2DConditionModel

        folder = C.inpaint_unet_dir(cache)
        unet = UNet2DConditionModel.from_pretrained(folder)
        info = {**info, "inpaint": json.loads((folder.parent / "done.json").read_text())}
    for m, name in ((te, "text_encoder"), (vae, "vae"), (unet, "unet")):
        print(f"{name}: {sum(p.numel() for p in m.parameters()) / 1e6:.2f} M parameters")
    name = "ov-diffusion/demo-inpaint" if args.inpaint else "ov-diffusion/demo"
    export(build_pipeline(tok, te, vae, unet), Path(args.out), args.weight_format, name)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
