"""Diagnostics for the demo model (issue 15): separates training problems from export/runtime problems.

    python diagnose.py diffusers --cache .cache/demo-train --out DIR [--limit 40] [--raw]
        renders held-out prompts with diffusers' StableDiffusionPipeline straight from the checkpoint
        (PNDM, 20 steps, guidance 7.5, 128x128) into DIR/*.png + DIR/prompts.json (judge them with judge-dir.js)
    python diagnose.py vae --cache .cache/demo-train [--export DIR] [--out RECDIR]
        reconstruction error of the torch VAE vs the exported vae_encoder/vae_decoder IRs, and per-colour means
        (without --export: the torch VAE of vae/checkpoint.pt alone, while it trains)
    python diagnose.py textuse --cache .cache/demo-train [-n 64] [--raw]
        denoising loss with the right, the empty and a wrong caption (does the UNet use the text?)
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import components as C
import shapes

HERE = Path(__file__).resolve().parent


def render_diffusers(cache: Path, out: Path, limit: int, raw: bool, steps: int, guidance: float) -> None:
    import export as E

    tok, te, vae, unet, info = E.load_trained(cache)
    if raw:  # the online weights instead of the EMA
        ck = torch.load(cache / "unet" / "checkpoint.pt", map_location="cpu", weights_only=False)
        te.load_state_dict(ck["text_encoder"])
        unet.load_state_dict(ck["unet"])
    pipe = E.build_pipeline(tok, te, vae, unet)
    pipe.set_progress_bar_config(disable=True)
    prompts = json.loads((HERE / "eval-prompts.json").read_text())
    singles = [p for p in prompts if len(p["objects"]) == 1][:limit]
    doubles = [p for p in prompts if len(p["objects"]) == 2][: (limit + 1) // 2]
    chosen = singles + doubles
    out.mkdir(parents=True, exist_ok=True)
    meta = []
    for k, p in enumerate(chosen):
        g = torch.Generator().manual_seed(1000 + k)
        img = pipe(p["prompt"], height=128, width=128, num_inference_steps=steps, guidance_scale=guidance,
                   generator=g).images[0]
        name = f"{k:03d}.png"
        img.save(out / name)
        meta.append({"file": name, **p})
    (out / "prompts.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({"rendered": len(meta), "checkpoint": info, "raw": raw}))


@torch.no_grad()
def vae_check(cache: Path, export_dir: Path | None, n: int, out: Path | None = None) -> None:
    import openvino as ov
    from diffusers import AutoencoderKL

    if export_dir is None:  # torch only, from the training checkpoint (a VAE still training)
        vae = C.make_vae()
        vae.load_state_dict(torch.load(cache / "vae" / "checkpoint.pt", map_location="cpu", weights_only=False)["vae"])
        vae.eval()
        enc = dec = None
        cfg = {"scaling_factor": None}
    else:
        vae = AutoencoderKL.from_pretrained(cache / "vae" / "final").eval()
        core = ov.Core()
        enc = core.compile_model(str(export_dir / "vae_encoder" / "openvino_model.xml"), "CPU")
        dec = core.compile_model(str(export_dir / "vae_decoder" / "openvino_model.xml"), "CPU")
        cfg = json.loads((export_dir / "vae_decoder" / "config.json").read_text())
    imgs = [shapes.sample("test", 10_000 + i)[0] for i in range(n)]
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    z = vae.encode(x).latent_dist.mean
    rec_t = vae.decode(z).sample.clamp(-1, 1)
    # exported IRs: the encoder IR returns the posterior moments (mean, logvar); the decoder IR takes scaled-back latents
    z_ir = torch.from_numpy(np.asarray(enc(x.numpy())[0]))[:, :4] if enc else z  # moments: mean, logvar
    rec_ir = torch.from_numpy(np.asarray(dec(z.numpy())[0])).clamp(-1, 1) if dec else rec_t
    u8 = lambda t: ((t + 1) * 127.5)
    res = {
        "scaling_factor_export": cfg["scaling_factor"],
        "torch_rec_mae_u8": (u8(rec_t) - u8(x)).abs().mean().item(),
        "ir_rec_mae_u8": (u8(rec_ir) - u8(x)).abs().mean().item(),
        "torch_vs_ir_decoder_max_u8": (u8(rec_t) - u8(rec_ir)).abs().max().item(),
        "encoder_ir_vs_torch_mean_abs": (z_ir - z).abs().mean().item(),
        "latent_std": z.std().item(),
    }
    # colour fidelity: mean reconstructed RGB over pixels whose drawn colour is exactly one vocabulary colour
    xs, rs = u8(x).permute(0, 2, 3, 1).reshape(-1, 3), u8(rec_t).permute(0, 2, 3, 1).reshape(-1, 3)
    per = {}
    for name, rgb in {**shapes.VOCAB["background_colours"]}.items():
        m = (xs.round() == torch.tensor(rgb, dtype=torch.float32)).all(dim=1)
        if m.sum() > 50:
            per[name] = {"drawn": rgb, "reconstructed": [round(v) for v in rs[m].mean(0).tolist()], "pixels": int(m.sum())}
    res["colours"] = per
    print(json.dumps(res, indent=1))
    if out is not None:  # reconstructions through the exported decoder, for judge-dir.js
        out.mkdir(parents=True, exist_ok=True)
        meta = []
        for i in range(n):
            _, cap, spec = shapes.sample("test", 10_000 + i)
            name = f"{i:03d}.png"
            arr = u8(rec_ir[i]).permute(1, 2, 0).round().clamp(0, 255).byte().numpy()
            Image.fromarray(arr).save(out / name)
            meta.append({"file": name, "prompt": cap, "objects": spec["objects"], "background": spec["background"]})
        (out / "prompts.json").write_text(json.dumps(meta, indent=1))


@torch.no_grad()
def text_use(cache: Path, n: int, raw: bool) -> None:
    """Does the UNet use the caption? Denoising loss on n training latents with the right caption, the
    empty caption and a wrong (shuffled) caption, at a few timesteps. If the three are equal, it does not."""
    import train as T

    ck = torch.load(cache / "unet" / "checkpoint.pt", map_location="cpu", weights_only=False)
    tok = C.make_tokenizer(cache)
    te, unet = C.make_text_encoder(tok), C.make_unet()
    src = ck if raw else ck["ema"]
    te.load_state_dict(src["text_encoder"])
    unet.load_state_dict(src["unet"])
    te.eval()
    unet.eval()
    mean, std, caps = T.load_latents(cache)
    g = torch.Generator().manual_seed(5)
    idx = torch.randperm(len(caps), generator=g)[:n]
    z0 = mean[idx] * ck["scaling_factor"]
    ids = C.tokenize(tok, [caps[i] for i in idx])
    wrong = ids[torch.roll(torch.arange(n), 1)]
    empty = C.tokenize(tok, [""] * n)
    sched = C.make_train_scheduler()
    res = {"step": ck["step"], "weights": "raw" if raw else "ema"}
    for tv in (100, 300, 500, 700, 900):
        t = torch.full((n,), tv)
        noise = torch.randn(z0.shape, generator=g)
        zt = sched.add_noise(z0, noise, t)
        row = {}
        for name, x in (("right", ids), ("empty", empty), ("wrong", wrong)):
            pred = unet(zt, t, encoder_hidden_states=te(x).last_hidden_state).sample
            row[name] = round(((pred - noise) ** 2).mean().item(), 5)
        res[f"t={tv}"] = row
    print(json.dumps(res))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["diffusers", "vae", "textuse"])
    ap.add_argument("--cache", default="../../.cache/demo-train")
    ap.add_argument("--out")
    ap.add_argument("--export")
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, default=7.5)
    ap.add_argument("--raw", action="store_true")
    ap.add_argument("-n", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.what == "diffusers":
        render_diffusers(Path(a.cache), Path(a.out), a.limit, a.raw, a.steps, a.guidance)
    elif a.what == "textuse":
        text_use(Path(a.cache), a.n, a.raw)
    else:
        vae_check(Path(a.cache), Path(a.export) if a.export else None, a.n, Path(a.out) if a.out else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
