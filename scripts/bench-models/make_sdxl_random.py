#!/usr/bin/env python3
"""Build a full-size Stable Diffusion XL base 1.0 model with random weights for benchmarks.

Architecture: stabilityai/stable-diffusion-xl-base-1.0 (StableDiffusionXLPipeline), written down below from the
public configs of that repository (no model hub access; the values are facts of the published configs, every key
that differs from the diffusers/transformers default is set explicitly):

- unet (UNet2DConditionModel, 2567.5 M parameters): block_out_channels [320, 640, 1280], layers_per_block 2,
  down [DownBlock2D, CrossAttnDownBlock2D, CrossAttnDownBlock2D], up [CrossAttnUpBlock2D, CrossAttnUpBlock2D,
  UpBlock2D], transformer_layers_per_block [1, 2, 10], attention_head_dim [5, 10, 20], cross_attention_dim 2048,
  use_linear_projection true, addition_embed_type "text_time", addition_time_embed_dim 256,
  projection_class_embeddings_input_dim 2816 (= 6 x 256 + 1280), sample_size 128, in/out channels 4.
- text_encoder (CLIPTextModel, CLIP ViT-L/14 text tower): hidden 768, 12 layers, 12 heads, intermediate 3072,
  quick_gelu, projection_dim 768, vocab 49408, 77 positions.
- text_encoder_2 (CLIPTextModelWithProjection, OpenCLIP ViT-bigG/14 text tower): hidden 1280, 32 layers,
  20 heads, intermediate 5120, gelu, projection_dim 1280, vocab 49408, 77 positions.
- vae (AutoencoderKL): the SD VAE layout (block_out_channels [128, 256, 512, 512], 4 latent channels),
  sample_size 1024, scaling_factor 0.13025, force_upcast true.
- scheduler: EulerDiscreteScheduler, scaled_linear 0.00085..0.012, 1000 train steps, epsilon, steps_offset 1,
  timestep_spacing "leading", interpolation linear, no Karras sigmas (+ clip_sample false, sample_max_value 1.0,
  set_alpha_to_one false, skip_prk_steps true, which the public scheduler_config.json also carries).
- model_index.json: StableDiffusionXLPipeline, force_zeros_for_empty_prompt true.

Tokenizers: as in make_sd15_random.py, the small byte-level BPE that scripts/fixtures/make_fixtures.py learns
from a generated word list (1000 tokens, max length 77), in tokenizer/ (pad "<|endoftext|>") and tokenizer_2/
(pad "!", like the public tokenizer_2). The embedding tables keep the real 49408 rows, so weights, memory and
compute equal the real model's. The images are noise.

Memory (the machine this was written on has 24 GB RAM and 2 cores): an fp32 UNet alone is 10.3 GB, and an
fp32 export holds the torch weights, the traced graph's constants and the IR at once. So the pipeline is built
in fp32 one component at a time, cast to fp16 and saved as an fp16 checkpoint (like the public ``fp16`` variant).
optimum-intel then loads and traces it in fp16 (see bench_model_common.py) and nncf compresses the 16-bit IR to
INT8_ASYM, exactly the ``optimum-cli export openvino --weight-format int8`` path, so the output has the layout and
IR input/output names of an optimum-intel SDXL export (unet, text_encoder, text_encoder_2, tokenizer,
tokenizer_2, vae_decoder, vae_encoder, scheduler, model_index.json, openvino_config.json).

Measured 2026-12-07 with `nice -n 19 /usr/bin/time -v bash scripts/bench-models/make-sdxl-random-int8.sh` on a
2-vCPU Intel Xeon VM with 23.5 GiB (shared with other work at normal priority; openvino 2026.4.1, nncf 3.4.0,
optimum-intel 2.2.0, torch 2.15.0, diffusers 0.39.0):
  wall 11 min 36 s (build + fp16 save 149 s, optimum-cli export incl. INT8 compression 527 s);
  peak RSS 12.0 GB while building (the fp32 UNet, 10.3 GB, plus its fp16 copy; in a forked child that exits
  before the export) and 19.3 GB in the exporter (time -v "Maximum resident set size" 19714064 kB): it fits in
  24 GB with ~4 GB to spare, nothing else big may run meanwhile. Result: 3.48 GB (unet 2.58 GB, text_encoder_2
  0.70 GB, text_encoder 0.12 GB, vae_decoder 50 MB, vae_encoder 34 MB); 18.2 GB written to disk in all (time -v
  "File system outputs"; the fp16 checkpoint and the 16-bit IR are temporary, next to the output).
  Figures per run: bench-model.json "timings".
Checked: DiffusionModel.load (ours) and openvino_genai.Text2ImagePipeline both load it and make the same
256x256 image in 2 steps (identical sha256).

Run through scripts/bench-models/make-sdxl-random-int8.sh (which uses the pinned fixture venv).
Usage: make_sdxl_random.py [--out DIR] [--weight-format int8|fp16|fp32] [--force] [--keep-tmp]
"""
from __future__ import annotations

import gc
import sys

import torch

import bench_model_common as common
from bench_model_common import fx

NAME = "sdxl-int8-random"

# stabilityai/stable-diffusion-xl-base-1.0 unet/config.json
UNET_CONFIG = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 2048,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1,
    "dual_cross_attention": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "only_cross_attention": False,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "resnet_time_scale_shift": "default",
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "upcast_attention": False,
    "use_linear_projection": True,
}

# stabilityai/stable-diffusion-xl-base-1.0 vae/config.json: SD's VAE with its own scaling factor, upcast and size.
VAE_CONFIG = {**common.SD_VAE_CONFIG, "force_upcast": True, "sample_size": 1024, "scaling_factor": 0.13025}

# stabilityai/stable-diffusion-xl-base-1.0 text_encoder/config.json: the CLIP ViT-L/14 text tower, as SD 1.5's
# (the real bos/eos/pad ids are 49406/49407/49407 here and 49406/49407/0 for text_encoder_2).
TEXT_ENCODER_CONFIG = common.CLIP_VIT_L_TEXT_CONFIG

# stabilityai/stable-diffusion-xl-base-1.0 text_encoder_2/config.json (OpenCLIP ViT-bigG/14 text tower)
TEXT_ENCODER_2_CONFIG = {
    "attention_dropout": 0.0,
    "dropout": 0.0,
    "hidden_act": "gelu",
    "hidden_size": 1280,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 5120,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "projection_dim": 1280,
    "vocab_size": 49408,
}

SAVE_DTYPE = torch.float16


def build_pipeline():
    from diffusers import AutoencoderKL, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tok = fx.make_clip_tokenizer()
    tok2 = fx.make_clip_tokenizer(pad_token="!")
    assert tok.model_max_length == 77 and tok2.model_max_length == 77
    params = {}

    def made(key, module):
        # cast each component right after building it: the fp32 copies never coexist
        params[key] = common.n_params(module)
        module = module.to(dtype=SAVE_DTYPE).eval()
        gc.collect()
        return module

    def te_config(cfg, t):
        return CLIPTextConfig(**cfg, bos_token_id=t.bos_token_id, eos_token_id=t.eos_token_id,
                              pad_token_id=t.pad_token_id)

    fx.seeded(f"{NAME}/text_encoder")
    te = made("text_encoder", CLIPTextModel(te_config(TEXT_ENCODER_CONFIG, tok)))
    fx.seeded(f"{NAME}/text_encoder_2")
    te2 = made("text_encoder_2", CLIPTextModelWithProjection(te_config(TEXT_ENCODER_2_CONFIG, tok2)))
    fx.seeded(f"{NAME}/unet")
    un = made("unet", UNet2DConditionModel(**UNET_CONFIG))
    fx.seeded(f"{NAME}/vae")
    va = made("vae", AutoencoderKL(**VAE_CONFIG))
    pipe = StableDiffusionXLPipeline(vae=va, text_encoder=te, text_encoder_2=te2, tokenizer=tok, tokenizer_2=tok2,
                                     unet=un, scheduler=fx.euler_sdxl(), force_zeros_for_empty_prompt=True)
    return pipe, params


def main() -> int:
    return common.run(
        name=NAME,
        tag="make-sdxl-random-int8",
        generator="scripts/bench-models/make_sdxl_random.py",
        architecture="stable-diffusion-xl-base-1.0 (StableDiffusionXLPipeline), full size, random weights",
        build=build_pipeline,
        configs={"unet": UNET_CONFIG, "vae": VAE_CONFIG, "text_encoder": TEXT_ENCODER_CONFIG,
                 "text_encoder_2": TEXT_ENCODER_2_CONFIG},
        scheduler_extra=fx.SCHEDULER_EXTRA["sdxl"],  # keys the public SDXL scheduler_config.json carries
        tokenizer_info={"kind": "generated byte-level BPE (tokenizer/ and tokenizer_2/, pad '!')", "vocab": 1000,
                        "model_max_length": 77},
        doc=__doc__,
        save_dtype=SAVE_DTYPE,
    )


if __name__ == "__main__":
    sys.exit(main())
