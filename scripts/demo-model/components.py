"""The demo model's components: BPE tokenizer (learned on the caption language), and the configs of
the CLIP text encoder, the AutoencoderKL and the UNet2DConditionModel, sized for a 2-core CPU.

Layout and schedule are those of Stable Diffusion 1.5 (VAE scale 8, 4 latent channels,
scaled_linear 0.00085..0.012 over 1000 steps, epsilon prediction), only much smaller.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np

import shapes

MAX_LEN = 77  # CLIP context, as in SD 1.x (the engine pads prompts to 77 tokens)
TRIGGER_WORDS = list(shapes.VOCAB["trigger_words"])

TEXT_CONFIG = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
                   max_position_embeddings=MAX_LEN, hidden_act="quick_gelu", projection_dim=128)

VAE_CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4,
                  down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                  block_out_channels=[16, 32, 64, 64], layers_per_block=1, norm_num_groups=8, sample_size=128)

# No attention at the 16x16 level (measured on this machine, batch 32 train steps: 64-128-128 with attention
# everywhere 7.9 samples/s, without attention at 16x16 17 samples/s, 48-96-96 without it 41 samples/s).
UNET_CONFIG = dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                   block_out_channels=[48, 96, 96],
                   down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                   up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
                   cross_attention_dim=TEXT_CONFIG["hidden_size"], attention_head_dim=8, norm_num_groups=16)

SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="epsilon")

# CLIP's pre-tokenization pattern (words, single digits, punctuation runs)
CLIP_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+"""


def caption_corpus(n: int = 4000) -> list[str]:
    """Text the BPE is learned from: training captions plus every vocabulary word on its own."""
    lines = [shapes.sample_spec(np.random.default_rng([shapes.SPLIT_SEEDS["train"], 10**6 + i])) for i in range(n)]
    text = [shapes.caption_of(s) for s in lines]
    words = set()
    for group in ("colours", "background_colours", "shapes", "sizes", "positions", "trigger_words"):
        for w in shapes.VOCAB[group]:
            words.add(w)
    text += sorted(words) + ["background", "striped", "outline", "a", "an", "and", "on", "in", "the", "with"]
    return text


def bytes_to_unicode() -> dict[int, str]:
    """Printable-unicode alias of every byte, as used by byte-level BPE vocabularies (GPT-2/CLIP convention)."""
    keep = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def learn_bpe(out_dir: Path, lines: list[str]) -> Path:
    """Trains a byte-level BPE with end-of-word suffix '</w>' with the `tokenizers` package and writes
    vocab.json + merges.txt in the CLIP format (bytes, bytes+'</w>', merges, then the two specials)."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_PATTERN), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    trainer = trainers.BpeTrainer(vocab_size=2000, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), end_of_word_suffix="</w>")
    tok.train_from_iterator(lines, trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    base = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for t in base + [b + "</w>" for b in base] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]:
        vocab.setdefault(t, len(vocab))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    return out_dir


def make_tokenizer(cache: Path):
    """The CLIPTokenizer of the demo model (learned once, then loaded from cache/tokenizer)."""
    from transformers import CLIPTokenizer

    d = cache / "tokenizer"
    if not (d / "tokenizer_config.json").exists():
        with tempfile.TemporaryDirectory() as tmp:
            learn_bpe(Path(tmp), caption_corpus())
            tok = CLIPTokenizer.from_pretrained(tmp, model_max_length=MAX_LEN, pad_token="<|endoftext|>")
            tok.save_pretrained(d)
    return CLIPTokenizer.from_pretrained(d)


def make_text_encoder(tok):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, **TEXT_CONFIG)
    return CLIPTextModel(cfg)


def make_vae(scaling_factor: float = 1.0):
    from diffusers import AutoencoderKL

    return AutoencoderKL(scaling_factor=scaling_factor, **VAE_CONFIG)


def make_unet(in_channels: int = 4):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**{**UNET_CONFIG, "in_channels": in_channels})


def base_weights(cache: Path, after_layout: bool = True, after_detail: bool = True,
                 after_guidance: bool = True) -> tuple[dict, dict, dict]:
    """Text encoder and UNet state dicts of the base model, with where they come from: the last fine-tune that has
    run (guidance after detail after layout, each when allowed), else the weights of an imported export, else the
    unet stage's EMA. Export takes the last; the inpainting, LoRA and guidance stages start from the model before
    the guidance stage."""
    import torch

    sources = (("guidance", after_guidance), ("detail", after_detail and after_layout), ("layout", after_layout),
               ("imported", True))
    for stage, allowed in sources:
        done = cache / stage / "done.json"
        if allowed and done.exists():
            w = torch.load(cache / stage / "weights.pt", map_location="cpu", weights_only=False)
            return w["text_encoder"], w["unet"], {"weights": stage, **json.loads(done.read_text())}
    ck = torch.load(cache / "unet" / "checkpoint.pt", map_location="cpu", weights_only=False)
    return ck["ema"]["text_encoder"], ck["ema"]["unet"], {"weights": "ema", "step": ck["step"], "samples": ck["samples"]}


def base_is_trained(cache: Path) -> bool:
    return (cache / "unet" / "done.json").exists() or (cache / "imported" / "done.json").exists()


def inpaint_unet_dir(cache: Path) -> Path:
    """The inpainting UNet to export: the guidance stage's when it has run, else the inpaint stage's."""
    guided = cache / "guidance-inpaint"
    return guided / "final" if (guided / "done.json").exists() else cache / "inpaint" / "final"


def lora_file(cache: Path) -> Path:
    """The LoRA to ship: the guidance stage's when it has run, else the lora stage's."""
    guided = cache / "guidance-lora"
    return (guided if (guided / "done.json").exists() else cache / "lora") / "outlined.safetensors"


def make_train_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(**SCHEDULE)


def make_pipeline_scheduler():
    """PNDM with the SD 1.5 config (what runwayml/stable-diffusion-v1-5 ships)."""
    from diffusers import PNDMScheduler

    return PNDMScheduler(**SCHEDULE, skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)


def tokenize(tok, captions: list[str]):
    return tok(captions, padding="max_length", max_length=MAX_LEN, truncation=True, return_tensors="pt").input_ids
