#!/usr/bin/env python3
"""Build a full-size Z-Image-Turbo model with random weights for benchmarks.

The transformer (ZImageTransformer2DModel, 6.2 B parameters), the Qwen3-4B text encoder (Qwen3Model, 4.0 B) and the
FLUX.1 VAE (AutoencoderKL, 16 latent channels) use the architecture configs of Tongyi-MAI/Z-Image-Turbo (embedded
below: no model hub access), with random (seeded) weights, and are exported with the real exporter
(``optimum-cli export openvino --weight-format int8``, as OpenVINO/Z-Image-Turbo-int8-ov is made) to
.cache/bench-models/zimage-int8-random.

This machine has 24 GB: the two large components cannot be loaded and traced in one export (about 20 GB of
bf16 weights before the exporter copies them). So the pipeline is exported twice (bench_model_common.run's parts):
once with the full transformer and a one-layer text encoder, once with the full text encoder and a small
transformer, and the full text encoder's folder replaces the small one. Each component is still exported from its
real class and config. Keep some swap on for the export (see make-zimage-random-int8.sh).

A real Qwen vocabulary is not available offline, so the tokenizer is the small byte-level BPE that
scripts/fixtures/make_fixtures.py learns, with Qwen3's special tokens and chat template. The embedding table
keeps the real 151,936 rows, so weights, memory and compute equal the real model's. The images are noise.

Usage: make_zimage_random.py [--out DIR] [--weight-format int8|fp16|fp32] [--force] [--keep-tmp]
"""
from __future__ import annotations

import contextlib
import sys

import bench_model_common as common
from bench_model_common import fx, torch

NAME = "zimage-int8-random"

# Tongyi-MAI/Z-Image-Turbo transformer/config.json
TRANSFORMER_CONFIG = {
    "all_patch_size": [2],
    "all_f_patch_size": [1],
    "in_channels": 16,
    "dim": 3840,
    "n_layers": 30,
    "n_refiner_layers": 2,
    "n_heads": 30,
    "n_kv_heads": 30,
    "norm_eps": 1e-05,
    "qk_norm": True,
    "cap_feat_dim": 2560,
    "rope_theta": 256.0,
    "t_scale": 1000.0,
    "axes_dims": [32, 48, 48],
    "axes_lens": [1536, 512, 512],
}

# Qwen/Qwen3-4B config.json (Z-Image-Turbo's text_encoder); pad/eos ids come from the generated tokenizer.
TEXT_ENCODER_CONFIG = {
    "vocab_size": 151936,
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 40960,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-06,
    "tie_word_embeddings": True,
}

# black-forest-labs/FLUX.1-dev vae/config.json (Z-Image-Turbo ships the same VAE)
VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
}

# The stand-ins while the other large component is exported: the same interfaces (cap_feat_dim 2560), tiny insides.
SMALL_TRANSFORMER = {**TRANSFORMER_CONFIG, "dim": 64, "n_layers": 1, "n_refiner_layers": 1, "n_heads": 2,
                     "n_kv_heads": 2, "axes_dims": [8, 12, 12]}
SMALL_TEXT_ENCODER = {**TEXT_ENCODER_CONFIG, "num_hidden_layers": 1}

SAVE_DTYPE = torch.bfloat16  # the dtype of the public checkpoint; built in it directly (fp32 would need 41 GB)


@contextlib.contextmanager
def built_in(dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def pipeline(transformer_config: dict, text_encoder_config: dict):
    from diffusers import AutoencoderKL, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    tok = fx.make_qwen_tokenizer()
    params = {}
    with built_in(SAVE_DTYPE), torch.no_grad():
        fx.seeded(f"{NAME}/text_encoder")
        te = Qwen3Model(Qwen3Config(**text_encoder_config, pad_token_id=tok.pad_token_id,
                                    eos_token_id=tok.eos_token_id, bos_token_id=None)).eval()
        fx.seeded(f"{NAME}/transformer")
        tr = ZImageTransformer2DModel(**transformer_config).eval()
        fx.seeded(f"{NAME}/vae")
        va = AutoencoderKL(**VAE_CONFIG).eval()
    for key, module in (("text_encoder", te), ("transformer", tr), ("vae", va)):
        params[key] = common.n_params(module)
    pipe = ZImagePipeline(scheduler=fx.flow_match(shift=3.0, dynamic=False), vae=va, text_encoder=te,
                          tokenizer=tok, transformer=tr)
    return pipe, params


def main() -> int:
    return common.run(
        name=NAME,
        tag="make-zimage-random-int8",
        generator="scripts/bench-models/make_zimage_random.py",
        architecture="Z-Image-Turbo (ZImagePipeline), full size, random weights",
        build=lambda: pipeline(TRANSFORMER_CONFIG, SMALL_TEXT_ENCODER),
        parts={"text_encoder": lambda: pipeline(SMALL_TRANSFORMER, TEXT_ENCODER_CONFIG)},
        configs={"transformer": TRANSFORMER_CONFIG, "text_encoder": TEXT_ENCODER_CONFIG, "vae": VAE_CONFIG},
        scheduler_extra=None,
        tokenizer_info={"kind": "generated byte-level BPE with Qwen3's special tokens and chat template",
                        "vocab": "about 1000"},
        doc=__doc__,
        save_dtype=SAVE_DTYPE,
    )


if __name__ == "__main__":
    sys.exit(main())
