"""Reads a model's weights back from an OpenVINO IR exported by optimum-cli (fp32, fp16 or INT8-compressed), so the
fine-tune stages of train.py can start from a shipped model when the training cache is gone (`train.py import`).

The exporter names each weight constant after its torch parameter (`self.<name>`; INT8 adds `<name>/zero_point` and
`<name>/scale`, w = (q - zero_point) * scale). Biases and norm scales lose that name: they are the Constant input of
the Add / Multiply op of their module (`__module.<path>/aten::<op>/Add`). Every tensor found is checked against the
torch parameter's size; the caller checks the recovered module's outputs against the IR's."""
from __future__ import annotations

import numpy as np
import openvino as ov
import torch


def _constant_value(node) -> np.ndarray | None:
    """The value of a Constant, or of a Convert of a Constant (fp16 weights), else None."""
    if node.get_type_name() == "Convert":
        node = node.input_value(0).get_node()
    if node.get_type_name() != "Constant":
        return None
    return node.get_data().astype(np.float32)


def _dequantized(consts: dict, name: str) -> np.ndarray | None:
    if name not in consts:
        return None
    q = consts[name].get_data().astype(np.float32)
    zp, scale = consts.get(name + "/zero_point"), consts.get(name + "/scale")
    if scale is None:
        return q
    zero = zp.get_data().astype(np.float32) if zp is not None else 0.0
    return (q - zero) * scale.get_data().astype(np.float32)


def _module_constant(ops_by_module: dict, path: str, kind: str) -> np.ndarray | None:
    """The constant operand of the module's last Add (kind 'bias') or Multiply (kind 'weight': norm scales)."""
    op_type = "Add" if kind == "bias" else "Multiply"
    found = None
    for op in ops_by_module.get(path, []):
        if op.get_type_name() != op_type:
            continue
        for value in op.input_values():
            data = _constant_value(value.get_node())
            if data is not None and data.size > 1:
                found = data  # the last one in topological order is the affine part (after the normalisation)
    return found


def state_from_ir(xml: str, reference: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of `reference` (a state dict, or the part of one that this IR holds) read from the IR, with the
    reference's shapes and dtypes. Raises SystemExit naming the parameters that are not found or have another size."""
    model = ov.Core().read_model(xml)
    consts, ops_by_module = {}, {}
    for op in model.get_ordered_ops():
        name = op.get_friendly_name()
        if op.get_type_name() == "Constant":
            consts[name] = op
        if name.startswith("__module.") and "/" in name:
            ops_by_module.setdefault(name[len("__module."):].split("/")[0], []).append(op)
    state, missing = {}, []
    for key, ref in reference.items():
        path, kind = key.rsplit(".", 1)
        data = _dequantized(consts, "self." + key)
        if data is None and kind in ("weight", "bias"):
            data = _module_constant(ops_by_module, path, kind)
        if data is None or data.size != ref.numel():
            missing.append(f"{key} ({'not found' if data is None else f'{data.size} values, want {ref.numel()}'})")
            continue
        state[key] = torch.from_numpy(np.ascontiguousarray(data)).reshape(ref.shape).to(ref.dtype)
    if missing:
        raise SystemExit(f"{xml}: {len(missing)} parameters not recovered: {missing[:8]}")
    return state


def _compiled(xml: str):
    return ov.Core().compile_model(xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def _check(name: str, ours: np.ndarray, theirs: np.ndarray, tolerance: float = 1e-2) -> dict:
    """Relative max difference between the recovered torch module and the IR on the same input."""
    rel = float(np.abs(ours - theirs).max() / (np.abs(theirs).max() + 1e-12))
    if not rel < tolerance:
        raise SystemExit(f"{name}: the recovered weights give other outputs than the IR (relative max diff {rel:.3g})")
    return {name: round(rel, 6)}


@torch.no_grad()
def import_model(cache, base_dir, inpaint_dir, lora_file) -> dict:
    """Rebuilds the training cache from exported models: cache/tokenizer, cache/vae/final, the base text encoder + UNet
    (cache/imported/weights.pt, which C.base_weights takes when no later stage has run), the inpainting UNet
    (cache/inpaint/final) and the LoRA (cache/lora). Each recovered module is run beside its IR on one input and
    must agree (INT8 weights are dequantised: the torch modules then hold exactly the shipped weights)."""
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from tokenizers import Tokenizer
    from transformers import CLIPTokenizer

    import components as C

    cache, base_dir, inpaint_dir = Path(cache), Path(base_dir), Path(inpaint_dir)
    checks = {}
    # tokenizer: the BPE vocabulary and merges of the exported tokenizer.json, as the slow CLIPTokenizer training uses
    fast = json.loads((base_dir / "tokenizer" / "tokenizer.json").read_text())["model"]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(fast["vocab"]))
        merges = [m if isinstance(m, str) else " ".join(m) for m in fast["merges"]]
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges))
        tok = CLIPTokenizer.from_pretrained(tmp, model_max_length=C.MAX_LEN, pad_token="<|endoftext|>")
        tok.save_pretrained(cache / "tokenizer")
    reference = Tokenizer.from_file(str(base_dir / "tokenizer" / "tokenizer.json"))
    captions = C.caption_corpus(200)
    if any(tok(c).input_ids != reference.encode(c).ids for c in captions):
        raise SystemExit("the imported tokenizer splits the captions differently from the exported tokenizer.json")
    ids = C.tokenize(tok, captions[:2])

    te = C.make_text_encoder(tok)
    te.load_state_dict(state_from_ir(str(base_dir / "text_encoder" / "openvino_model.xml"), te.state_dict()))
    te.eval()
    ir = _compiled(str(base_dir / "text_encoder" / "openvino_model.xml"))
    checks |= _check("text_encoder", te(ids).last_hidden_state.numpy(), ir({"input_ids": ids.numpy()})[0])
    emb = te(ids[:1]).last_hidden_state

    scaling = json.loads((base_dir / "vae_decoder" / "config.json").read_text())["scaling_factor"]
    vae = C.make_vae(scaling)
    full = vae.state_dict()
    state = {}
    for part, prefixes in (("vae_encoder", ("encoder.", "quant_conv.")), ("vae_decoder", ("decoder.", "post_quant_conv."))):
        state |= state_from_ir(str(base_dir / part / "openvino_model.xml"),
                               {k: v for k, v in full.items() if k.startswith(prefixes)})
    vae.load_state_dict(state)
    vae.eval()
    z = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    ir = _compiled(str(base_dir / "vae_decoder" / "openvino_model.xml"))
    decoded = vae.decode(z).sample
    checks |= _check("vae_decoder", decoded.numpy(), ir([z.numpy()])[0])  # both take unscaled latents
    x = decoded.clamp(-1, 1)
    ir = _compiled(str(base_dir / "vae_encoder" / "openvino_model.xml"))
    checks |= _check("vae_encoder", vae.quant_conv(vae.encoder(x)).numpy(),
                     ir([x.numpy()])[0])
    if (cache / "vae" / "final").exists():
        shutil.rmtree(cache / "vae" / "final")
    vae.save_pretrained(cache / "vae" / "final")
    source = {"imported_from": str(base_dir)}
    for marker in ("done.json", "decoder-done.json"):
        (cache / "vae" / marker).write_text(json.dumps(source))

    unets = {}
    for name, folder, channels in (("unet", base_dir, 4), ("inpaint", inpaint_dir, 9)):
        xml = str(folder / "unet" / "openvino_model.xml")
        unet = C.make_unet(in_channels=channels)
        unet.load_state_dict(state_from_ir(xml, unet.state_dict()))
        unet.eval()
        sample = torch.randn(1, channels, 16, 16, generator=torch.Generator().manual_seed(1))
        t = torch.tensor([700])
        ir = _compiled(xml)
        checks |= _check(name, unet(sample, t, encoder_hidden_states=emb).sample.numpy(),
                         ir({"sample": sample.numpy(), "timestep": t.numpy().astype(np.float32),
                             "encoder_hidden_states": emb.numpy()})[0])
        unets[name] = unet
    (cache / "imported").mkdir(parents=True, exist_ok=True)
    torch.save({"text_encoder": te.state_dict(), "unet": unets["unet"].state_dict()}, cache / "imported" / "weights.pt")
    (cache / "imported" / "done.json").write_text(json.dumps({**source, "checks": checks}))
    if (cache / "inpaint" / "final").exists():
        shutil.rmtree(cache / "inpaint" / "final")
    unets["inpaint"].save_pretrained(cache / "inpaint" / "final")
    (cache / "inpaint" / "done.json").write_text(json.dumps({"imported_from": str(inpaint_dir)}))
    (cache / "lora").mkdir(parents=True, exist_ok=True)
    shutil.copy(lora_file, cache / "lora" / "outlined.safetensors")
    (cache / "lora" / "done.json").write_text(json.dumps({"imported_from": str(lora_file)}))
    return checks
