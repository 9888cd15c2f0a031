#!/usr/bin/env python3
"""Build a full-size Stable Diffusion 1.5 model with random weights for benchmarks.

The UNet, CLIP text encoder and VAE use the exact architecture configs of
stable-diffusion-v1-5/stable-diffusion-v1-5 (embedded below: no model hub access), with random
(seeded) weights. The pipeline is saved with diffusers, exported with the real exporter
(``optimum-cli export openvino --weight-format int8``: nncf.compress_weights, INT8_ASYM, which is how
OpenVINO/stable-diffusion-v1-5-int8-ov was made) and written to .cache/bench-models/sd15-int8-random.

A real CLIP vocabulary is not available offline, so the tokenizer is the small byte-level BPE that
scripts/fixtures/make_fixtures.py learns from a generated word list (1000 tokens, max length 77). The
text encoder's embedding table still has the real 49408 rows, so weights, memory and compute equal the
real model's; tokenization cost differs negligibly. The images are noise.

Run through scripts/bench-models/make-sd15-random-int8.sh (which uses the pinned fixture venv).
Usage: make_sd15_random.py [--out DIR] [--weight-format int8|fp16|fp32] [--force] [--keep-tmp]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))

import torch  # noqa: E402

import make_fixtures as fx  # noqa: E402  (tokenizer generator, PNDM config, seeding helpers)

NAME = "sd15-int8-random"

# stable-diffusion-v1-5/stable-diffusion-v1-5 unet/config.json (diffusers 0.6 era keys; defaults omitted)
UNET_CONFIG = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

# stable-diffusion-v1-5/stable-diffusion-v1-5 vae/config.json
VAE_CONFIG = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "scaling_factor": 0.18215,
}

# stable-diffusion-v1-5/stable-diffusion-v1-5 text_encoder/config.json (openai/clip-vit-large-patch14 text tower).
# bos/eos/pad ids are taken from the generated tokenizer (the real ones are 49406/49407/49407).
TEXT_ENCODER_CONFIG = {
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "hidden_act": "quick_gelu",
    "hidden_size": 768,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "projection_dim": 768,
    "vocab_size": 49408,
}


def build_pipeline():
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tok = fx.make_clip_tokenizer()
    assert tok.model_max_length == 77
    te_cfg = CLIPTextConfig(**TEXT_ENCODER_CONFIG, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                            pad_token_id=tok.pad_token_id)
    fx.seeded(f"{NAME}/text_encoder")
    te = CLIPTextModel(te_cfg).eval()
    fx.seeded(f"{NAME}/unet")
    un = UNet2DConditionModel(**UNET_CONFIG).eval()
    fx.seeded(f"{NAME}/vae")
    va = AutoencoderKL(**VAE_CONFIG).eval()
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in (("text_encoder", te), ("unet", un), ("vae", va))}
    return StableDiffusionPipeline(vae=va, text_encoder=te, tokenizer=tok, unet=un, scheduler=fx.pndm_sd15(),
                                   safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False), params


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / ".cache" / "bench-models" / NAME))
    ap.add_argument("--weight-format", default="int8", choices=["int8", "fp16", "fp32"])
    ap.add_argument("--force", action="store_true", help="rebuild even if the output folder is complete")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()

    out = Path(args.out).resolve()
    stamp = out / "bench-model.json"
    if stamp.exists() and not args.force:
        print(f"make-sd15-random-int8: {out} exists (bench-model.json present); --force rebuilds it")
        return 0

    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t0 = time.time()
    print("[1/4] building the SD 1.5 pipeline at full size (random weights)", flush=True)
    pipe, params = build_pipeline()
    for k, v in params.items():
        print(f"  {k}: {v / 1e6:.1f} M parameters", flush=True)

    tmp_parent = out.parent
    tmp_parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=tmp_parent))  # next to the output: same disk, not /tmp
    try:
        src = tmp / "diffusers"
        print(f"[2/4] save_pretrained -> {src}", flush=True)
        pipe.save_pretrained(src, safe_serialization=True)
        del pipe
        dst_tmp = tmp / "ov"
        cli = Path(sys.executable).with_name("optimum-cli")
        cmd = [str(cli) if cli.exists() else "optimum-cli", "export", "openvino", "--model", str(src),
               "--library", "diffusers", "--task", "text-to-image", "--weight-format", args.weight_format,
               str(dst_tmp)]
        print(f"[3/4] export ({time.time() - t0:.0f}s so far)\n  $ {' '.join(cmd)}", flush=True)
        r = subprocess.run(cmd)
        if r.returncode != 0:
            raise RuntimeError(f"optimum-cli export failed (exit {r.returncode})")
        print(f"[4/4] finishing ({time.time() - t0:.0f}s so far)", flush=True)
        sp = dst_tmp / "scheduler" / "scheduler_config.json"
        cfg = json.loads(sp.read_text())
        cfg.update(fx.SCHEDULER_EXTRA["sd15"])  # keys the public SD1.5 repo carries (clip_sample: false)
        sp.write_text(json.dumps(dict(sorted(cfg.items())), indent=2) + "\n")
        for f in sorted(dst_tmp.rglob("*.json")):
            t = f.read_text()
            if str(src) in t:
                f.write_text(t.replace(str(src), f"ov-diffusion-bench/{NAME}"))
        problems = fx.check_layout(dst_tmp)
        if problems:
            raise RuntimeError("; ".join(problems))
        import openvino as ov
        import nncf
        import optimum.intel
        sizes = {d.name: dir_size(d) for d in sorted(dst_tmp.iterdir()) if d.is_dir()}
        info = {
            "name": NAME,
            "generator": "scripts/bench-models/make_sd15_random.py",
            "architecture": "stable-diffusion-v1-5 (StableDiffusionPipeline), full size, random weights",
            "weight_format": args.weight_format,
            "parameters": params,
            "sizes_bytes": sizes,
            "total_bytes": dir_size(dst_tmp),
            "configs": {"unet": UNET_CONFIG, "vae": VAE_CONFIG, "text_encoder": TEXT_ENCODER_CONFIG},
            "tokenizer": {"kind": "generated byte-level BPE", "vocab": 1000, "model_max_length": 77},
            "versions": {"openvino": ov.__version__, "nncf": nncf.__version__,
                         "optimum-intel": getattr(optimum.intel, "__version__", "?"),
                         "torch": torch.__version__},
            "build_seconds": round(time.time() - t0, 1),
        }
        (dst_tmp / "bench-model.json").write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(dst_tmp), str(out))
        print(f"make-sd15-random-int8: wrote {out} ({info['total_bytes'] / 1e9:.2f} GB, {info['build_seconds']}s)")
        for k, v in sizes.items():
            print(f"  {k}: {v / 1e6:.1f} MB")
        return 0
    finally:
        if args.keep_tmp:
            print(f"  (kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
