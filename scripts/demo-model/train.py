"""Trains the demo model on a 2-core CPU, in resumable stages (each checkpoints to --cache every few minutes
and continues from its checkpoint when re-run):

    python train.py vae    --cache .cache/demo-train --minutes 12     # AutoencoderKL on 64x64 crops
    python train.py encode --cache .cache/demo-train --count 24000    # training images -> latents (VAE posterior)
    python train.py unet   --cache .cache/demo-train --minutes 90     # CLIP text encoder + UNet, jointly, CFG dropout
    python train.py decoder --cache .cache/demo-train --steps 1500    # VAE decoder only, full-size, encoder frozen
    python train.py bench  --cache .cache/demo-train                  # throughput of both (for sizing the plan)

Seeds are fixed; a stage that finished writes <stage>/done.json and is skipped unless --steps/--minutes
ask for more.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import components as C
import shapes

torch.set_num_threads(int(os.environ.get("DEMO_THREADS", "2")))


def log(stage: str, **kv) -> None:
    print(json.dumps({"stage": stage, "time": time.strftime("%H:%M:%S"), **kv}), flush=True)


def save_atomic(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def images_to_tensor(imgs: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


# ------------------------------------------------------------------------------------------------
# VAE
# ------------------------------------------------------------------------------------------------

def train_vae(cache: Path, minutes: float, steps: int | None, batch: int, crop: int, lr: float,
              weighted_from: int = 1500, object_weight: float = 8.0) -> None:
    d = cache / "vae"
    ck = d / "checkpoint.pt"
    torch.manual_seed(1)
    vae = C.make_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    step, seen = 0, 0
    if ck.exists():
        s = torch.load(ck, map_location="cpu", weights_only=False)
        vae.load_state_dict(s["vae"])
        opt.load_state_dict(s["opt"])
        step, seen = s["step"], s["seen"]
        log("vae", resumed=step)
    vae.train()
    t_end = time.time() + minutes * 60
    t_ck = time.time()
    acc, n_acc, t0 = {"rec": 0.0, "kl": 0.0}, 0, time.time()
    while (steps is None or step < steps) and time.time() < t_end:
        rng = np.random.default_rng([7, step])
        phase2 = step >= weighted_from
        imgs, weights = [], []
        for k in range(batch):
            img, _, spec = shapes.sample("vae", seen + k)
            if phase2 and rng.random() < 0.75:  # a crop around one of the objects
                o = spec["objects"][rng.integers(len(spec["objects"]))]["box"]
                cx, cy = (o[0] + o[2]) / 2, (o[1] + o[3]) / 2
                x = int(np.clip(cx - crop / 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, img.shape[1] - crop))
                y = int(np.clip(cy - crop / 2 + rng.integers(-crop // 4, crop // 4 + 1), 0, img.shape[0] - crop))
            else:
                y, x = rng.integers(0, img.shape[0] - crop + 1, size=2)
            imgs.append(img[y:y + crop, x:x + crop])
            bg = np.asarray(shapes.BACKGROUNDS[spec["background"]], np.int16)
            fg = (np.abs(imgs[-1].astype(np.int16) - bg).max(axis=2) > 8).astype(np.float32)
            weights.append(1.0 + (object_weight - 1.0) * fg if phase2 else np.ones_like(fg))
        seen += batch
        x = images_to_tensor(imgs)
        w = torch.from_numpy(np.stack(weights))[:, None]
        post = vae.encode(x).latent_dist
        z = post.sample()
        rec = vae.decode(z).sample
        # phase 1: plain L1 + MSE; phase 2 (step >= weighted_from): object pixels weigh object_weight times
        # more, crops favour objects, lr decays (cosine) to the end: backgrounds are most of the pixels but
        # the objects are what the judge (and a user) looks at
        l_rec = ((w * (rec - x).abs()).sum() + (w * (rec - x) ** 2).sum()) / (w.sum() * 3)
        if phase2 and steps:
            p = min(1.0, (step - weighted_from) / max(1, steps - weighted_from))
            for group in opt.param_groups:
                group["lr"] = lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))
        l_kl = post.kl().mean() / (z[0].numel())
        loss = l_rec + 1e-4 * l_kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        acc["rec"] += l_rec.item()
        acc["kl"] += l_kl.item()
        n_acc += 1
        if step % 50 == 0:
            dt = time.time() - t0
            log("vae", step=step, rec=round(acc["rec"] / n_acc, 5), kl=round(acc["kl"] / n_acc, 4),
                img_per_s=round(n_acc * batch / dt, 2))
            acc, n_acc, t0 = {"rec": 0.0, "kl": 0.0}, 0, time.time()
        if time.time() - t_ck > 180:
            save_atomic({"vae": vae.state_dict(), "opt": opt.state_dict(), "step": step, "seen": seen}, ck)
            t_ck = time.time()
    save_atomic({"vae": vae.state_dict(), "opt": opt.state_dict(), "step": step, "seen": seen}, ck)
    if steps is not None and step < steps:
        log("vae", paused=step, target=steps)
        raise SystemExit(3)  # time budget of this invocation used up: run again to continue
    finalize_vae(cache, vae, step)


@torch.no_grad()
def finalize_vae(cache: Path, vae, step: int) -> None:
    """Measures reconstruction on held-out full-size drawings and sets scaling_factor = 1/std(latents)."""
    vae.eval()
    zs, errs, obj_errs = [], [], []
    for b in range(0, 256, 32):
        x = images_to_tensor([shapes.sample("test", 10_000 + i)[0] for i in range(b, b + 32)])
        post = vae.encode(x).latent_dist
        zs.append(post.mean)
        rec = vae.decode(post.mean).sample.clamp(-1, 1)
        errs.append(((rec - x).abs() * 127.5).mean(dim=(1, 2, 3)))
        for i in range(b, b + 32):  # error on object pixels only (they are ~10 % of the pixels)
            _, _, spec = shapes.sample("test", 10_000 + i)
            bg = torch.tensor(shapes.BACKGROUNDS[spec["background"]], dtype=torch.float32)[:, None, None]
            xi = (x[i - b] + 1) * 127.5
            fg = ((xi - bg).abs().amax(0) > 8)
            obj_errs.append(((rec[i - b] - x[i - b]).abs() * 127.5).mean(0)[fg].mean())
    z = torch.cat(zs)
    std = z.std().item()
    vae.register_to_config(scaling_factor=round(1.0 / std, 5))
    vae.save_pretrained(cache / "vae" / "final")
    info = {"step": step, "latent_mean": z.mean().item(), "latent_std": std, "scaling_factor": 1.0 / std,
            "mean_abs_error_u8": torch.cat(errs).mean().item(),
            "object_mean_abs_error_u8": torch.stack(obj_errs).mean().item()}
    (cache / "vae" / "done.json").write_text(json.dumps(info, indent=1))
    log("vae", final=info)


def train_decoder(cache: Path, minutes: float, steps: int | None, batch: int, lr: float) -> None:
    """Fine-tunes the VAE decoder only, on full 128x128 drawings, with the encoder frozen: the latent space
    (and so the trained UNet) stays valid while colours and edges get sharper."""
    from diffusers import AutoencoderKL

    d = cache / "vae"
    ck = d / "decoder-checkpoint.pt"
    vae = AutoencoderKL.from_pretrained(d / "final")
    if not (d / "encoder-final").exists():
        vae.save_pretrained(d / "encoder-final")  # the VAE the latents were made with
    vae = AutoencoderKL.from_pretrained(d / "encoder-final")
    train_params = list(vae.post_quant_conv.parameters()) + list(vae.decoder.parameters())
    for p in vae.parameters():
        p.requires_grad_(False)
    for p in train_params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(train_params, lr=lr, weight_decay=0.0)
    step, seen = 0, 0
    if ck.exists():
        s = torch.load(ck, map_location="cpu", weights_only=False)
        vae.load_state_dict(s["vae"])
        opt.load_state_dict(s["opt"])
        step, seen = s["step"], s["seen"]
        log("decoder", resumed=step)
    vae.encoder.eval()
    vae.decoder.train()
    t_end, t_ck, t0, acc, n_acc = time.time() + minutes * 60, time.time(), time.time(), 0.0, 0
    while (steps is None or step < steps) and time.time() < t_end:
        x = images_to_tensor([shapes.sample("vae", 10**7 + seen + k)[0] for k in range(batch)])
        seen += batch
        with torch.no_grad():
            z = vae.encode(x).latent_dist.sample()
        rec = vae.decode(z).sample
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(train_params, 1.0)
        opt.step()
        step += 1
        acc += loss.item()
        n_acc += 1
        if step % 25 == 0:
            log("decoder", step=step, rec=round(acc / n_acc, 5), img_per_s=round(n_acc * batch / (time.time() - t0), 2))
            t0, acc, n_acc = time.time(), 0.0, 0
        if time.time() - t_ck > 180:
            save_atomic({"vae": vae.state_dict(), "opt": opt.state_dict(), "step": step, "seen": seen}, ck)
            t_ck = time.time()
    save_atomic({"vae": vae.state_dict(), "opt": opt.state_dict(), "step": step, "seen": seen}, ck)
    if steps is not None and step < steps:
        log("decoder", paused=step, target=steps)
        raise SystemExit(3)
    scaling = AutoencoderKL.load_config(d / "encoder-final")["scaling_factor"]
    vae.eval()
    with torch.no_grad():
        x = images_to_tensor([shapes.sample("test", 10_000 + i)[0] for i in range(64)])
        err = ((vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1) - x).abs() * 127.5).mean().item()
    vae.register_to_config(scaling_factor=scaling)
    vae.save_pretrained(d / "final")
    (d / "decoder-done.json").write_text(json.dumps({"step": step, "mean_abs_error_u8": err}, indent=1))
    log("decoder", final={"step": step, "mean_abs_error_u8": err})


# ------------------------------------------------------------------------------------------------
# Latents of the training set
# ------------------------------------------------------------------------------------------------

@torch.no_grad()
def encode(cache: Path, count: int, chunk: int = 1000) -> None:
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(cache / "vae" / "final").eval()
    d = cache / "latents"
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for c0 in range(0, count, chunk):
        f = d / f"chunk-{c0 // chunk:04d}.pt"
        if f.exists():
            continue
        caps, means, stds = [], [], []
        for b in range(c0, min(count, c0 + chunk), 50):
            batch = [shapes.sample("train", i) for i in range(b, min(count, c0 + chunk, b + 50))]
            post = vae.encode(images_to_tensor([s[0] for s in batch])).latent_dist
            means.append(post.mean.half())
            stds.append(post.std.half())
            caps += [s[1] for s in batch]
        save_atomic({"mean": torch.cat(means), "std": torch.cat(stds), "captions": caps, "first": c0}, f)
        log("encode", chunk=f.name, done=min(count, c0 + chunk), img_per_s=round(min(count, c0 + chunk) / (time.time() - t0), 1))
    (d / "done.json").write_text(json.dumps({"count": count}))


def load_latents(cache: Path):
    files = sorted((cache / "latents").glob("chunk-*.pt"))
    parts = [torch.load(f, weights_only=False) for f in files]
    return (torch.cat([p["mean"] for p in parts]).float(), torch.cat([p["std"] for p in parts]).float(),
            [c for p in parts for c in p["captions"]])


# ------------------------------------------------------------------------------------------------
# Text encoder + UNet
# ------------------------------------------------------------------------------------------------

def lr_at(step: int, base: float, warmup: int, total: int | None = None, floor: float = 0.1) -> float:
    """Linear warmup, then (when the total is known) cosine decay to floor * base at the last step."""
    if step < warmup:
        return base * (step + 1) / warmup
    if not total or total <= warmup:
        return base
    p = min(1.0, (step - warmup) / (total - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def train_unet(cache: Path, minutes: float, steps: int | None, batch: int, lr: float, dropout: float,
               ckpt_minutes: float, offset_noise: float) -> None:
    from diffusers import AutoencoderKL

    d = cache / "unet"
    ck = d / "checkpoint.pt"
    scaling = AutoencoderKL.load_config(cache / "vae" / "final")["scaling_factor"]
    mean, std, caps = load_latents(cache)
    n = len(caps)
    tok = C.make_tokenizer(cache)
    ids_all = C.tokenize(tok, caps)
    empty_ids = C.tokenize(tok, [""])[0]
    torch.manual_seed(2)
    te, unet = C.make_text_encoder(tok), C.make_unet()
    params = list(te.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    ema = {"text_encoder": {k: v.detach().clone() for k, v in te.state_dict().items()},
           "unet": {k: v.detach().clone() for k, v in unet.state_dict().items()}}
    step, samples = 0, 0
    if ck.exists():
        s = torch.load(ck, map_location="cpu", weights_only=False)
        te.load_state_dict(s["text_encoder"])
        unet.load_state_dict(s["unet"])
        opt.load_state_dict(s["opt"])
        ema, step, samples = s["ema"], s["step"], s["samples"]
        log("unet", resumed=step)
    sched = C.make_train_scheduler()
    alphas = sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    te.train()
    unet.train()
    t_end = time.time() + minutes * 60
    t_ck, t0, acc, n_acc = time.time(), time.time(), 0.0, 0

    def checkpoint():
        save_atomic({"text_encoder": te.state_dict(), "unet": unet.state_dict(), "opt": opt.state_dict(),
                     "ema": ema, "step": step, "samples": samples, "scaling_factor": scaling,
                     "config": {"batch": batch, "lr": lr, "dropout": dropout, "latents": n, "offset_noise": offset_noise,
                                "steps": steps}}, ck)

    while (steps is None or step < steps) and time.time() < t_end:
        g = torch.Generator().manual_seed(1000 + step)
        idx = torch.randint(0, n, (batch,), generator=g)
        z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * scaling
        ids = ids_all[idx].clone()
        drop = torch.rand(batch, generator=g) < dropout
        ids[drop] = empty_ids
        t = torch.randint(0, sched.config.num_train_timesteps, (batch,), generator=g)
        noise = torch.randn(z0.shape, generator=g)
        if offset_noise:
            # Offset noise: a per-image, per-channel constant added to the noise. The SD 1.5 schedule keeps
            # sqrt(alphas_cumprod[999]) = 0.068 of the signal at the last step, and on 16x16 latents whose
            # per-image channel means vary with std ~0.8 (backgrounds), that leak is as large as the mean of
            # the noise itself: without this, the model reads the background colour from the noise mean at
            # inference (where the noise has none of it) instead of from the caption.
            noise = noise + offset_noise * torch.randn(batch, z0.shape[1], 1, 1, generator=g)
        zt = sched.add_noise(z0, noise, t)
        cond = te(ids).last_hidden_state
        pred = unet(zt, t, encoder_hidden_states=cond).sample
        w = torch.clamp(snr[t], max=5.0) / snr[t]  # min-SNR-5 weighting (epsilon target)
        loss = (w * ((pred - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, lr, 300, steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        samples += batch
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for name, model in (("text_encoder", te), ("unet", unet)):
                for k, v in model.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema[name][k].mul_(decay).add_(v.detach(), alpha=1 - decay)
                    else:
                        ema[name][k].copy_(v)
        acc += loss.item()
        n_acc += 1
        if step % 25 == 0:
            dt = time.time() - t0
            log("unet", step=step, loss=round(acc / n_acc, 5), samples_per_s=round(n_acc * batch / dt, 2),
                samples=samples)
            t0, acc, n_acc = time.time(), 0.0, 0
        if time.time() - t_ck > ckpt_minutes * 60:
            checkpoint()
            t_ck = time.time()
    checkpoint()
    log("unet", stopped=step, samples=samples)
    if steps is not None and step < steps:
        raise SystemExit(3)  # time budget of this invocation used up: run again to continue
    (d / "done.json").write_text(json.dumps({"step": step, "samples": samples}))


# ------------------------------------------------------------------------------------------------

def bench(cache: Path, seconds: float) -> None:
    """Throughput of one training step of each model (random data), for sizing the plan."""
    tok = C.make_tokenizer(cache)
    for name, batch in (("vae64", 16), ("unet", 32)):
        torch.manual_seed(0)
        if name == "vae64":
            m = C.make_vae()
            params = list(m.parameters())
        else:
            te, m = C.make_text_encoder(tok), C.make_unet()
            params = list(te.parameters()) + list(m.parameters())
        opt = torch.optim.AdamW(params, lr=1e-4)
        t_end, k, t_first = time.time() + seconds, 0, None
        while time.time() < t_end:
            if name == "vae64":
                x = torch.randn(batch, 3, 64, 64)
                out = m(x).sample
                loss = F.mse_loss(out, x)
            else:
                ids = C.tokenize(tok, ["a small red circle in the centre"] * batch)
                z = torch.randn(batch, 4, 16, 16)
                out = m(z, torch.randint(0, 1000, (batch,)), encoder_hidden_states=te(ids).last_hidden_state).sample
                loss = F.mse_loss(out, z)
            opt.zero_grad()
            loss.backward()
            opt.step()
            k += 1
            if k == 1:
                t_first = time.time()
        dt = time.time() - t_first
        log("bench", model=name, batch=batch, steps=k - 1, samples_per_s=round((k - 1) * batch / dt, 2),
            params_M=round(sum(p.numel() for p in params) / 1e6, 2))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("stage", choices=["vae", "encode", "unet", "decoder", "bench"])
    ap.add_argument("--cache", default=".cache/demo-train")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--count", type=int, default=24000)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--offset-noise", type=float, default=0.15)
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if args.stage == "vae":
        train_vae(cache, args.minutes, args.steps, args.batch or 16, 64, args.lr or 1e-3)
    elif args.stage == "decoder":
        train_decoder(cache, args.minutes, args.steps, args.batch or 8, args.lr or 3e-4)
    elif args.stage == "encode":
        encode(cache, args.count)
    elif args.stage == "unet":
        train_unet(cache, args.minutes, args.steps, args.batch or 32, args.lr or 6e-4, args.dropout, args.ckpt_minutes,
                   args.offset_noise)
    else:
        bench(cache, args.minutes * 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
