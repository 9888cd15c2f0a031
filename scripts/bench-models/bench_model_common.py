"""Shared steps of the full-size random-weight bench model generators (make_sd15_random.py, make_sdxl_random.py,
make_zimage_random.py).

A generator supplies a ``build()`` that returns a diffusers pipeline with random (seeded) weights and its
parameter counts; ``run()`` saves it with diffusers, exports it with the real exporter
(``optimum-cli export openvino --weight-format int8`` by default), merges the scheduler keys the public repo
carries, checks the folder layout, writes bench-model.json and moves the result into place.

``save_dtype`` (torch.float16 / torch.bfloat16 / None) casts the pipeline before save_pretrained. optimum-intel
reads the dtype of the saved UNet/transformer weights and, for a 16-bit checkpoint and an INT8/INT4 export,
loads and traces the pipeline in that dtype (its 16-bit patch): the intermediate IR then holds 16-bit
constants instead of fp32 ones, which halves the memory of the export. The compressed INT8 weights are the same
kind either way (INT8_ASYM per output channel); the few uncompressed constants (norms, biases) stay 16-bit.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "fixtures"))

import torch  # noqa: E402

import make_fixtures as fx  # noqa: E402  (tokenizer generator, scheduler configs, seeding helpers, layout check)


# stable-diffusion-v1-5/stable-diffusion-v1-5 vae/config.json (SDXL's differs in scaling_factor, force_upcast and
# sample_size).
SD_VAE_CONFIG = {
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

# The CLIP ViT-L/14 text tower's config (openai/clip-vit-large-patch14), SD 1.5's text_encoder and SDXL's first.
# bos/eos/pad ids are taken from the generated tokenizer (the real ones are 49406/49407/49407).
CLIP_VIT_L_TEXT_CONFIG = {
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


def dir_size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def max_rss_mb() -> float:
    """Peak RSS of this process so far (MB; Linux ru_maxrss is in kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build_and_save(build, architecture, save_dtype, src: Path, result: Path) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"[1/4] building the {architecture.split(' (')[0]} pipeline at full size (random weights)", flush=True)
    pipe, params = build()
    for k, v in params.items():
        print(f"  {k}: {v / 1e6:.1f} M parameters", flush=True)
    if save_dtype is not None:
        pipe.to(dtype=save_dtype)
    print(f"[2/4] save_pretrained -> {src}" + (f" ({save_dtype})" if save_dtype else ""), flush=True)
    pipe.save_pretrained(src, safe_serialization=True)
    result.write_text(json.dumps({"params": params, "max_rss_mb": round(max_rss_mb())}))


def _build_save_export(name: str, build, architecture, save_dtype, work: Path, weight_format: str, timings: dict,
                       label: str, keep_source: bool) -> tuple[Path, dict]:
    """Builds and saves one pipeline (in a forked child: when it exits, all of its memory is back before the
    exporter starts; torch/diffusers keep the saved weights alive in this process otherwise), then exports it with
    the real exporter. Returns the exported folder and the built components' parameter counts."""
    import multiprocessing

    t0 = time.time()
    src, dst = work / "diffusers", work / "ov"
    result = work / "build.json"
    child = multiprocessing.get_context("fork").Process(
        target=_build_and_save, args=(build, architecture, save_dtype, src, result))
    child.start()
    child.join()
    if child.exitcode != 0 or not result.exists():
        raise RuntimeError(f"building/saving the pipeline{label} failed (exit {child.exitcode})")
    built = json.loads(result.read_text())
    timings[f"build_and_save{label}_s"] = round(time.time() - t0, 1)
    timings[f"build_and_save{label}_max_rss_mb"] = built["max_rss_mb"]
    cli = Path(sys.executable).with_name("optimum-cli")
    cmd = [str(cli) if cli.exists() else "optimum-cli", "export", "openvino", "--model", str(src),
           "--library", "diffusers", "--task", "text-to-image", "--weight-format", weight_format, str(dst)]
    print(f"[3/4] export{label} (building and saving peaked at {built['max_rss_mb']} MB RSS)\n"
          f"  $ {' '.join(cmd)}", flush=True)
    t1 = time.time()
    # The exporter's own temporary folder (the un-quantized IR) goes next to the output as well.
    env = dict(os.environ, TMPDIR=str(work))
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage: its peak RSS alone
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"optimum-cli export{label} failed (exit {proc.returncode})")
    timings[f"export{label}_s"] = round(time.time() - t1, 1)
    timings[f"export{label}_max_rss_mb"] = round(usage.ru_maxrss / 1024)
    for f in sorted(dst.rglob("*.json")):  # configs record the temp path
        t = f.read_text()
        if str(src) in t:
            f.write_text(t.replace(str(src), f"ov-diffusion-bench/{name}"))
    if not keep_source:  # the 16-bit checkpoint is not needed any more: keep the disk for the next part
        shutil.rmtree(src)
    return dst, built["params"]


def run(*, name: str, tag: str, generator: str, architecture: str, build: Callable[[], tuple],
        configs: dict, scheduler_extra: dict | None, tokenizer_info: dict, doc: str | None,
        save_dtype: "torch.dtype | None" = None, parts: "dict[str, Callable[[], tuple]] | None" = None) -> int:
    """Parse the common command line, build, save, export and finish. Returns the exit code.

    parts: {component folder: build} for models too large to export in one go on this machine. build() then makes
    the pipeline with every component in parts shrunk, each parts[c]() makes it with c at full size and the others
    shrunk; each pipeline is exported on its own and c's exported folder replaces the small one. Every component is
    still exported by the real exporter, from its real class and config; only the export's peak memory changes."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / ".cache" / "bench-models" / name))
    ap.add_argument("--weight-format", default="int8", choices=["int8", "fp16", "fp32"])
    ap.add_argument("--force", action="store_true", help="rebuild even if the output folder is complete")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()

    out = Path(args.out).resolve()
    stamp = out / "bench-model.json"
    if stamp.exists() and not args.force:
        print(f"{tag}: {out} exists (bench-model.json present); --force rebuilds it")
        return 0

    t0 = time.time()
    tmp_parent = out.parent
    tmp_parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=tmp_parent))  # next to the output: same disk, not /tmp
    timings = {}
    try:
        (tmp / "main").mkdir()
        dst_tmp, params = _build_save_export(name, build, architecture, save_dtype, tmp / "main", args.weight_format,
                                             timings, "", args.keep_tmp)
        for component, build_part in (parts or {}).items():
            work = tmp / component
            work.mkdir()
            part, part_params = _build_save_export(name, build_part, architecture, save_dtype, work, args.weight_format,
                                                   timings, f" ({component})", args.keep_tmp)
            shutil.rmtree(dst_tmp / component)
            shutil.move(str(part / component), str(dst_tmp / component))
            params[component] = part_params[component]
            if not args.keep_tmp:
                shutil.rmtree(work)
        print(f"[4/4] finishing ({time.time() - t0:.0f}s so far)", flush=True)
        if scheduler_extra:
            sp = dst_tmp / "scheduler" / "scheduler_config.json"
            cfg = json.loads(sp.read_text())
            cfg.update(scheduler_extra)  # keys the public repo carries that current diffusers no longer writes
            sp.write_text(json.dumps(dict(sorted(cfg.items())), indent=2) + "\n")
        problems = fx.check_layout(dst_tmp)
        if problems:
            raise RuntimeError("; ".join(problems))
        import openvino as ov
        import nncf
        import optimum.intel
        sizes = {d.name: dir_size(d) for d in sorted(dst_tmp.iterdir()) if d.is_dir()}
        info = {
            "name": name,
            "generator": generator,
            "architecture": architecture,
            "weight_format": args.weight_format,
            "parameters": params,
            "sizes_bytes": sizes,
            "total_bytes": dir_size(dst_tmp),
            "configs": configs,
            "tokenizer": tokenizer_info,
            "versions": {"openvino": ov.__version__, "nncf": nncf.__version__,
                         "optimum-intel": getattr(optimum.intel, "__version__", "?"),
                         "torch": torch.__version__},
            "build_seconds": round(time.time() - t0, 1),
        }
        if save_dtype is not None:
            info["saved_dtype"] = str(save_dtype).replace("torch.", "")
        info["timings"] = timings
        (dst_tmp / "bench-model.json").write_text(json.dumps(info, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        shutil.move(str(dst_tmp), str(out))
        print(f"{tag}: wrote {out} ({info['total_bytes'] / 1e9:.2f} GB, {info['build_seconds']}s)")
        for k, v in sizes.items():
            print(f"  {k}: {v / 1e6:.1f} MB")
        return 0
    finally:
        if args.keep_tmp:
            print(f"  (kept {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
