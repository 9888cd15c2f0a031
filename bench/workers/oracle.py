#!/usr/bin/env python3
"""Bench worker for the reference: openvino_genai (Python) on the same spec as bench/workers/engine.js.

Run with the oracle venv (.cache/oracle-venv/bin/python). Reads the spec (JSON) on stdin and prints one
JSON line per event, prefixed with @@BENCH, on stdout. One process per measurement, so VmHWM (peak
resident memory) belongs to this measurement alone.

Spec fields used: model, device, properties (passed to every submodel exactly like ours), reshape
({batch, width, height, guidance}: pipe.reshape() then pipe.compile()), inputs ({image, mask, width,
height}: raw RGB u8 files), runs ([{label, task, prompt, negativePrompt, width, height, steps,
guidance, seed, strength, repeat, warmup}]).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import sys
import time

MARK = "@@BENCH "


def emit(event: dict) -> None:
    sys.stdout.write(MARK + json.dumps(event) + "\n")
    sys.stdout.flush()


def memory() -> dict:
    with open("/proc/self/status") as f:
        status = f.read()

    def kb(key):
        m = re.search(rf"^{key}:\s+(\d+) kB", status, re.M)
        return int(m.group(1)) if m else float("nan")

    return {"rssMiB": kb("VmRSS") / 1024, "hwmMiB": kb("VmHWM") / 1024, "anonMiB": kb("RssAnon") / 1024,
            "fileMiB": kb("RssFile") / 1024}


def main() -> int:
    # Line 1 of stdin: the spec. With spec["interactive"], each further line is a command: {"run": {...}} runs it
    # and answers {"event": "idle"}; {"quit": true} (or the end of stdin) ends the worker.
    spec = json.loads(sys.stdin.readline())
    emit({"event": "start", "pid": os.getpid(), **memory()})
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    emit({"event": "imported", **memory()})
    kinds = {"text2image": ov_genai.Text2ImagePipeline, "image2image": ov_genai.Image2ImagePipeline,
             "inpainting": ov_genai.InpaintingPipeline}
    device = spec.get("device") or "CPU"
    props = {k: str(v) for k, v in (spec.get("properties") or {}).items()}
    runs = spec.get("runs") or []
    tasks = list(spec.get("tasks") or [])
    for r in runs:
        if r.get("task", "text2image") not in tasks:
            tasks.append(r.get("task", "text2image"))
    if not tasks:
        tasks = ["text2image"]

    # One pipeline per task, as an openvino_genai user would do; the first is timed as "load". Further tasks
    # are derived from the first (Image2ImagePipeline(t2i) shares the compiled models, as ours does).
    # openvino_genai 2026.4.1 segfaults in generate() of an InpaintingPipeline derived from an Image2ImagePipeline,
    # so the inpainting pipeline, when needed, is the one loaded and the others are derived from it.
    if "inpainting" in tasks:
        tasks.remove("inpainting")
        tasks.insert(0, "inpainting")
    t0 = time.perf_counter()
    reshape = spec.get("reshape")
    first_kind = kinds[tasks[0]]
    if reshape:
        pipe = first_kind(spec["model"])
        pipe.reshape(int(reshape.get("batch", 1)), int(reshape["height"]), int(reshape["width"]),
                     float(reshape["guidance"]))
        pipe.compile(device, **props)
    else:
        pipe = first_kind(spec["model"], device, **props)
    load_ms = (time.perf_counter() - t0) * 1000.0
    pipes = {tasks[0]: pipe}
    for t in tasks[1:]:
        try:
            pipes[t] = kinds[t](pipe)
        except TypeError:  # no constructor from this pipeline kind: load it on its own
            pipes[t] = kinds[t](spec["model"], device, **props)
    emit({"event": "load", "wallMs": load_ms, "loadMs": pipe.get_performance_metrics().get_load_time(),
          "openvino": ov.get_version(), "genai": getattr(ov_genai, "__version__", "?"), **memory()})

    inputs = spec.get("inputs") or {}

    def raw(path):
        data = np.fromfile(path, dtype=np.uint8)
        return ov.Tensor(data.reshape(1, int(inputs["height"]), int(inputs["width"]), 3))

    image = raw(inputs["image"]) if inputs.get("image") else None
    mask = raw(inputs["mask"]) if inputs.get("mask") else None

    def execute(r):
        task = r.get("task", "text2image")
        if (r.get("concurrency") or 1) != 1:
            raise RuntimeError("openvino_genai pipelines run one generate() at a time")
        kw = dict(width=int(r["width"]), height=int(r["height"]), num_inference_steps=int(r["steps"]),
                  guidance_scale=float(r["guidance"]), rng_seed=int(r["seed"]))
        if r.get("negativePrompt"):
            kw["negative_prompt"] = r["negativePrompt"]
        if r.get("strength") is not None:
            kw["strength"] = float(r["strength"])
        p = pipes[task]
        total = int(r.get("warmup") or 0) + int(r["repeat"])
        for k in range(total):
            i = k + int(r.get("indexBase") or 0)
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            s = time.perf_counter()
            if task == "text2image":
                out = p.generate(r["prompt"], **kw)
            elif task == "image2image":
                out = p.generate(r["prompt"], image, **kw)
            else:
                out = p.generate(r["prompt"], image, mask, **kw)
            wall = (time.perf_counter() - s) * 1000.0
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu_ms = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * 1000.0
            m = p.get_performance_metrics()
            steps_us = list(m.raw_metrics.iteration_durations)
            unet_us = list(m.raw_metrics.unet_inference_durations)
            te = m.get_text_encoder_infer_duration()
            arr = np.asarray(out.data)
            if r.get("imageFile"):  # the first image, raw RGB, as the engine worker writes it (-ours- there)
                arr[0].tofile(f"{r['imageFile']}-oracle-{i}.raw")
            emit({"event": "run", "label": r["label"], "index": i, "warmup": k < int(r.get("warmup") or 0),
                  "concurrency": 1, "wallMs": wall, "cpuMs": cpu_ms, "latencies": [wall], "steps": len(steps_us),
                  "metrics": {"textEncodeMs": float(sum(te.values())), "textEncoderMs": {k: float(v) for k, v in te.items()},
                              "vaeEncodeMs": float(m.get_vae_encoder_infer_duration()),
                              "vaeDecodeMs": float(m.get_vae_decoder_infer_duration()),
                              "stepMs": [x / 1000.0 for x in steps_us], "denoiserMs": [x / 1000.0 for x in unet_us],
                              "totalMs": float(m.get_generate_duration())},
                  "sha256": hashlib.sha256(arr[0].tobytes()).hexdigest(), **memory()})

    for r in runs:
        execute(r)
    if spec.get("interactive"):
        for line in sys.stdin:
            if not line.strip():
                continue
            command = json.loads(line)
            if command.get("quit"):
                break
            if command.get("run"):
                if command["run"].get("task", "text2image") not in pipes:
                    raise RuntimeError("interactive runs must use a task given in the spec's runs or tasks")
                execute(command["run"])
            emit({"event": "idle"})
    del pipes, pipe
    ru = resource.getrusage(resource.RUSAGE_SELF)
    emit({"event": "end", "cpuMs": (ru.ru_utime + ru.ru_stime) * 1000.0, **memory()})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # reported to the orchestrator, which prints it
        emit({"event": "error", "message": f"{type(e).__name__}: {e}"})
        sys.exit(1)
