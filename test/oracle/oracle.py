#!/usr/bin/env python3
"""openvino-genai oracle CLI for pixel-equality tests.

Run with the oracle venv's python (see test/oracle/setup.sh):

    .cache/oracle-venv/bin/python test/oracle/oracle.py < request.json

Single request (one JSON object on stdin):
    {"pipeline": "text2image" | "image2image" | "inpainting",
     "model": "<exported model folder>", "device": "CPU",
     "prompt": "...", "negative_prompt", "prompt_2", "negative_prompt_2", "prompt_3", "negative_prompt_3",
     "width", "height", "num_inference_steps", "guidance_scale", "num_images_per_prompt", "rng_seed",
     "strength", "max_sequence_length",
     "scheduler": "DDIM" | "EULER_DISCRETE" | "EULER_ANCESTRAL_DISCRETE" | "PNDM" | "LCM"
                  | "FLOW_MATCH_EULER_DISCRETE" | "LMS_DISCRETE" | "AUTO",
     "image": "<path>", "mask": "<path>",
     "adapters": [{"path": "<file.safetensors>", "alpha": 0.7}, ...],
     "taylorseer": null | true | false | {"cache_interval": 3, "disable_cache_before_step": 6,
                                         "disable_cache_after_step": -2},
     "out": "<path for raw RGB u8 output>"}

  Every field that is absent or null is NOT passed, so the oracle's own defaults apply.
  Extra optional fields:
    "image_shape" / "mask_shape": [H, W, C] or [1, H, W, C] when "image"/"mask" is a raw u8 file
                                  (files ending in .png/.jpg/.jpeg/.bmp/.webp are decoded with PIL);
    "mask_channels": 3 (default) or 1: PNG masks are converted to RGB [1,H,W,3] (what the JS API
                     requires) unless 1 is given, then to gray [1,H,W,1];
    "adapters_mode": "MODE_AUTO" | "MODE_DYNAMIC" | "MODE_STATIC_RANK" | "MODE_STATIC" | "MODE_FUSE";
    "properties": {...} passed to the pipeline constructor (e.g. {"INFERENCE_PRECISION_HINT": "f32"});
    "fresh": true builds a new pipeline for this request instead of reusing a cached one (openvino_genai's rank-0
             LoRA states break the next call with a real adapter on the same request: a composite after a single
             adapter that leaves some layers untouched is wrong in the oracle);
    "reshape": [num_images_per_prompt, height, width, guidance_scale]: static shapes. The pipeline is built
               with the (path) constructor, then pipe.reshape(...) and pipe.compile(device, **properties,
               adapters=...) run; the reshape is part of the cache key.

  "scheduler" is applied with pipe.set_scheduler(Scheduler.from_config(<model>/scheduler/scheduler_config.json,
  Scheduler.Type.<name>)).  "adapters": [] (empty list) passes an empty AdapterConfig (LoRA off) to a pipeline
  that was built with adapters; to get that, put the adapters you want to switch between in "adapters_pool".
  "taylorseer": true passes the default TaylorSeerCacheConfig(), false passes taylorseer_config=None (disables
  the cache that SD3/FLUX text2image enable by default), an object sets the given fields.

  Output: the result tensor (u8 [N,H,W,3], NHWC) is written as raw bytes to "out" (if given) and one JSON
  line is printed on stdout:
      {"shape": [N, H, W, 3], "ms": <generate() wall time>, "load_ms": <pipeline load time, 0 if cached>,
       "sha256": "<hex of the raw bytes>"}
  On error: {"error": "<message>"} and exit code 1.

Batch mode: {"requests": [req, req, ...]} on stdin. Pipelines are cached by
(pipeline kind, model, device, adapter pool, adapter mode, properties, reshape); a cached pipeline whose scheduler differs
from the request's gets set_scheduler(...) (no request = the folder's own scheduler via Type.AUTO). One JSON line
per request is printed (errors as {"error": ...} lines; processing continues). Exit code 1 if any request failed.
A hard crash of the oracle (signal) ends the batch: callers should treat missing lines as failures.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

try:
    import openvino as ov
    import openvino_genai as ov_genai
except ImportError as e:  # pragma: no cover
    print(json.dumps({"error": f"cannot import openvino_genai ({e}); run test/oracle/setup.sh and use "
                      f".cache/oracle-venv/bin/python"}), flush=True)
    sys.exit(1)

PIPELINES = {
    "text2image": ov_genai.Text2ImagePipeline,
    "image2image": ov_genai.Image2ImagePipeline,
    "inpainting": ov_genai.InpaintingPipeline,
}

# generate() keyword arguments passed through when present and not null
PASSTHROUGH = {
    "negative_prompt": str, "prompt_2": str, "negative_prompt_2": str, "prompt_3": str, "negative_prompt_3": str,
    "width": int, "height": int, "num_inference_steps": int, "guidance_scale": float,
    "num_images_per_prompt": int, "rng_seed": int, "strength": float, "max_sequence_length": int,
}

KNOWN = set(PASSTHROUGH) | {
    "pipeline", "model", "device", "prompt", "scheduler", "image", "mask", "adapters", "adapters_pool",
    "adapters_mode", "taylorseer", "out", "image_shape", "mask_shape", "mask_channels",
    "properties", "reshape", "id", "fresh",
}

PIL_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


class OracleError(Exception):
    pass


def _load_u8(path: str, shape, channels: int) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise OracleError(f"file not found: {path}")
    if p.suffix.lower() in PIL_EXT:
        from PIL import Image

        with Image.open(p) as im:
            im = im.convert("RGB" if channels == 3 else "L")
            arr = np.asarray(im, dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return np.ascontiguousarray(arr[None])
    if shape is None:
        raise OracleError(f"{path}: raw image files need an explicit *_shape [H, W, C] in the request")
    shape = list(shape)
    if len(shape) == 3:
        shape = [1] + shape
    if len(shape) != 4:
        raise OracleError(f"bad shape {shape} for {path}")
    data = np.fromfile(p, dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise OracleError(f"{path}: {data.size} bytes do not match shape {shape}")
    return data.reshape(shape)


def _refuse_known_crash(cfg_path: str, sched) -> None:
    """Turn known hard crashes of the oracle into errors (a segfault would also end a whole batch).
    openvino-genai 2026.4.1: the LCM scheduler with prediction_type != epsilon segfaults in generate()."""
    try:
        cfg = json.loads(Path(cfg_path).read_text())
    except Exception:
        return  # let the pipeline report missing/invalid configs itself
    is_lcm = sched == "LCM" or (sched in (None, "AUTO") and cfg.get("_class_name") == "LCMScheduler")
    pred = cfg.get("prediction_type", "epsilon")
    if is_lcm and pred != "epsilon":
        raise OracleError(f"refused: the oracle segfaults with the LCM scheduler and prediction_type={pred!r}")


class Oracle:
    def __init__(self):
        self.pipes: dict = {}
        self.adapters: dict = {}  # path -> ov_genai.Adapter (same object reused: Adapter equality is identity)

    @staticmethod
    def lora_reads_stale_inputs(device: str, props: dict) -> bool:
        """On the CPU plugin's f32 path (a CPU without native BF16, or INFERENCE_PRECISION_HINT=f32), the fused LoRA
        node keeps reading the first buffer bound to a model input it reads directly, after the pipeline binds a new
        buffer of the same shape. openvino_genai binds a new encoder_hidden_states tensor on every SDXL generate(), so
        its second LoRA call on a pipeline already computes with stale memory (drifting, then black images). Its
        first call after construction is right, so there every LoRA request gets a pipeline of its own."""
        if device != "CPU":
            return False
        hint = props.get("INFERENCE_PRECISION_HINT")
        if hint is None:
            hint = str(ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))
        return "f32" in str(hint).lower() or "float32" in str(hint).lower()

    def adapter(self, path: str):
        key = os.path.realpath(path)
        if key not in self.adapters:
            if not Path(key).is_file():
                raise OracleError(f"adapter file not found: {path}")
            self.adapters[key] = ov_genai.Adapter(key)
        return self.adapters[key]

    def adapter_config(self, entries, mode):
        m = ov_genai.AdapterConfig.Mode.__members__[mode] if mode else ov_genai.AdapterConfig.Mode.MODE_AUTO
        cfg = ov_genai.AdapterConfig(m)
        for e in entries:
            if isinstance(e, str):
                e = {"path": e}
            cfg.add(self.adapter(e["path"]), float(e.get("alpha", 1.0)))
        return cfg

    def pipeline(self, req):
        kind = req.get("pipeline") or "text2image"
        if kind not in PIPELINES:
            raise OracleError(f"unknown pipeline {kind!r}; expected one of {sorted(PIPELINES)}")
        model = req.get("model")
        if not model:
            raise OracleError("'model' is required")
        model = os.path.realpath(model)
        device = req.get("device") or "CPU"
        sched = req.get("scheduler")
        pool = req.get("adapters_pool")
        if pool is None:
            pool = req.get("adapters") or []
        pool_paths = tuple(sorted({os.path.realpath(e if isinstance(e, str) else e["path"]) for e in pool}))
        props = req.get("properties") or {}
        reshape = req.get("reshape")
        if reshape is not None:
            if not isinstance(reshape, list) or len(reshape) != 4:
                raise OracleError("'reshape' must be [num_images_per_prompt, height, width, guidance_scale]")
            reshape = (int(reshape[0]), int(reshape[1]), int(reshape[2]), float(reshape[3]))
        key = (kind, model, device, pool_paths, req.get("adapters_mode"), json.dumps(props, sort_keys=True), reshape)
        cfg_path = os.path.join(model, "scheduler", "scheduler_config.json")
        types = ov_genai.Scheduler.Type.__members__
        if sched and sched not in types:
            raise OracleError(f"unknown scheduler type {sched!r}; expected one of {sorted(types)}")
        _refuse_known_crash(cfg_path, sched)
        if req.get("fresh") or (pool_paths and self.lora_reads_stale_inputs(device, props)):
            self.pipes.pop(key, None)  # this request gets a newly built pipeline
        if key in self.pipes:
            entry = self.pipes[key]
            # switch the scheduler of the cached pipeline when a different one is asked for
            # (None = the folder's own scheduler, re-created with Type.AUTO)
            if entry[1] != sched:
                entry[0].set_scheduler(ov_genai.Scheduler.from_config(cfg_path, types[sched or "AUTO"]))
                entry[1] = sched
            return entry[0], 0.0
        kwargs = dict(props)
        if pool_paths:
            kwargs["adapters"] = self.adapter_config(list(pool_paths), req.get("adapters_mode"))
        t0 = time.perf_counter()
        if reshape is None:
            pipe = PIPELINES[kind](model, device, **kwargs)
        else:
            pipe = PIPELINES[kind](model)
            pipe.reshape(*reshape)
            pipe.compile(device, **kwargs)
        if sched:
            pipe.set_scheduler(ov_genai.Scheduler.from_config(cfg_path, types[sched]))
        load_ms = (time.perf_counter() - t0) * 1000.0
        self.pipes[key] = [pipe, sched]
        return pipe, load_ms

    def run(self, req: dict) -> dict:
        if not isinstance(req, dict):
            raise OracleError("request must be a JSON object")
        unknown = set(req) - KNOWN
        if unknown:
            raise OracleError(f"unknown request field(s): {sorted(unknown)}")
        kind = req.get("pipeline") or "text2image"
        prompt = req.get("prompt")
        if prompt is None:
            raise OracleError("'prompt' is required")
        pipe, load_ms = self.pipeline(req)

        kw = {}
        for k, conv in PASSTHROUGH.items():
            if req.get(k) is not None:
                kw[k] = conv(req[k])
        if req.get("adapters") is not None:
            kw["adapters"] = self.adapter_config(req["adapters"], req.get("adapters_mode"))
        ts = req.get("taylorseer")
        if ts is True:
            kw["taylorseer_config"] = ov_genai.TaylorSeerCacheConfig()
        elif ts is False:
            kw["taylorseer_config"] = None
        elif isinstance(ts, dict):
            c = ov_genai.TaylorSeerCacheConfig()
            for k, v in ts.items():
                if not hasattr(c, k):
                    raise OracleError(f"unknown taylorseer field {k!r}")
                setattr(c, k, int(v))
            kw["taylorseer_config"] = c

        args = [prompt]
        if kind in ("image2image", "inpainting"):
            if not req.get("image"):
                raise OracleError(f"{kind} needs 'image'")
            args.append(ov.Tensor(_load_u8(req["image"], req.get("image_shape"), 3)))
        if kind == "inpainting":
            if not req.get("mask"):
                raise OracleError("inpainting needs 'mask'")
            mch = int(req.get("mask_channels") or 3)
            args.append(ov.Tensor(_load_u8(req["mask"], req.get("mask_shape"), mch)))
        elif req.get("mask"):
            raise OracleError(f"'mask' is only valid for inpainting, not {kind}")
        if kind == "text2image" and req.get("image"):
            raise OracleError("'image' is not valid for text2image")

        t0 = time.perf_counter()
        out = pipe.generate(*args, **kw)
        ms = (time.perf_counter() - t0) * 1000.0
        arr = np.array(out.data, copy=True)  # copy: the output tensor aliases the decoder's buffer
        raw = arr.tobytes()
        res = {"shape": list(arr.shape), "ms": round(ms, 3), "load_ms": round(load_ms, 3),
               "sha256": hashlib.sha256(raw).hexdigest()}
        if req.get("id") is not None:
            res["id"] = req["id"]
        if req.get("out"):
            Path(req["out"]).parent.mkdir(parents=True, exist_ok=True)
            with open(req["out"], "wb") as f:
                f.write(raw)
        return res


def _err(e: BaseException) -> dict:
    msg = str(e) if isinstance(e, OracleError) else f"{type(e).__name__}: {e}"
    return {"error": msg.strip()}


def main() -> int:
    try:
        text = sys.stdin.read()
        doc = json.loads(text)
    except Exception as e:
        print(json.dumps({"error": f"invalid JSON on stdin: {e}"}), flush=True)
        return 1
    oracle = Oracle()
    if isinstance(doc, dict) and "requests" in doc:
        reqs = doc["requests"]
        if not isinstance(reqs, list):
            print(json.dumps({"error": "'requests' must be a list"}), flush=True)
            return 1
        failed = 0
        for req in reqs:
            try:
                res = oracle.run(req)
            except Exception as e:
                res = _err(e)
                if isinstance(req, dict) and req.get("id") is not None:
                    res["id"] = req["id"]
                failed += 1
            print(json.dumps(res), flush=True)
        return 1 if failed else 0
    try:
        res = oracle.run(doc)
    except Exception as e:
        print(json.dumps(_err(e)), flush=True)
        return 1
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
