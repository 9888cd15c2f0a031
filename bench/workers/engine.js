'use strict';
// Bench worker for our library: one process per measurement (so peak memory is its own).
// Reads a spec (JSON) on stdin, loads the model with DiffusionModel.load, runs the requested generations and
// prints one JSON line per event (prefixed with @@BENCH) on stdout. See Session.baseSpec and
// Session.t2iRun (bench/lib/session.js) for the spec.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const { emit, memory, withLagProbe } = require('./common');

const ROOT = path.resolve(__dirname, '..', '..');

function rawImage(file, width, height, channels) {
  return { data: fs.readFileSync(file), width, height, channels };
}

function summarizeMetrics(m) {
  return {
    textEncodeMs: m.textEncodeMs,
    vaeEncodeMs: m.vaeEncodeMs,
    vaeDecodeMs: m.vaeDecodeMs,
    stepMs: m.stepMs,
    denoiserMs: m.denoiserMs,
    totalMs: m.totalMs,
    queueMs: m.queueMs,
  };
}

async function main() {
  // Line 1 of stdin: the spec. With spec.interactive, each further line is a command: {"run": {...}} runs it and
  // answers {"event": "idle"}; {"quit": true} (or the end of stdin) ends the worker.
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const first = await lines.next();
  const spec = JSON.parse(first.value);
  emit({ event: 'start', pid: process.pid, ...memory() });
  const lib = require(path.join(ROOT, 'dist', 'index.js'));
  emit({ event: 'imported', ...memory() });
  const { DiffusionModel, openvinoVersion, allocatorTuning } = lib;

  const loadOptions = {
    device: spec.device || 'CPU',
    properties: spec.properties || {},
    maxConcurrency: spec.maxConcurrency || 1,
  };
  if (spec.reshape) loadOptions.reshape = spec.reshape;
  if (spec.deepcache) loadOptions.deepcache = spec.deepcache;
  const t0 = performance.now();
  const model = await DiffusionModel.load(spec.model, loadOptions);
  const loadWallMs = performance.now() - t0;
  emit({
    event: 'load',
    wallMs: loadWallMs,
    loadMs: model.loadMs,
    className: model.className,
    openvino: openvinoVersion(),
    allocator: allocatorTuning(),
    ...memory(),
  });

  const inputs = spec.inputs || {};
  const execute = async (run) => {
    const image = inputs.image && rawImage(inputs.image, inputs.width, inputs.height, 3);
    const mask = inputs.mask && rawImage(inputs.mask, inputs.width, inputs.height, 3);
    const options = {
      width: run.width,
      height: run.height,
      numInferenceSteps: run.steps,
      guidanceScale: run.guidance,
      seed: run.seed,
    };
    if (run.negativePrompt) options.negativePrompt = run.negativePrompt;
    if (run.strength !== undefined) options.strength = run.strength;
    if (run.scheduler) options.scheduler = run.scheduler;
    if (run.deepcacheInterval) options.deepcacheInterval = run.deepcacheInterval;
    // Previews are made only for a caller that listens to the steps.
    if (run.previews) Object.assign(options, { previews: run.previews, previewMode: run.previewMode, onStep: () => undefined });
    const call = () => {
      if (run.task === 'image2image') return model.image2image(run.prompt, image, options);
      if (run.task === 'inpainting') return model.inpaint(run.prompt, image, mask, options);
      return model.text2image(run.prompt, options);
    };
    const total = (run.warmup || 0) + run.repeat;
    for (let k = 0; k < total; k += 1) {
      const i = k + (run.indexBase || 0);
      const concurrency = run.concurrency || 1;
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      const { value: results, lag } = await withLagProbe(Boolean(run.lag), () =>
        Promise.all(
          Array.from({ length: concurrency }, async () => {
            const s = performance.now();
            const r = await call();
            return { r, latencyMs: performance.now() - s };
          }),
        ),
      );
      const wallMs = performance.now() - start;
      const cpu = process.cpuUsage(cpuStart);
      const first = results[0].r;
      // For image comparisons (PSNR): the first image, raw RGB, at <imageFile>-ours-<index>.raw.
      if (run.imageFile) fs.writeFileSync(`${run.imageFile}-ours-${i}.raw`, first.images[0].data);
      emit({
        event: 'run',
        label: run.label,
        index: i,
        warmup: k < (run.warmup || 0),
        concurrency,
        wallMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        latencies: results.map((x) => x.latencyMs),
        steps: first.steps,
        metrics: summarizeMetrics(first.metrics),
        allMetrics: results.map((x) => summarizeMetrics(x.r.metrics)),
        sha256: crypto.createHash('sha256').update(first.images[0].data).digest('hex'),
        lag,
        ...memory(),
      });
    }
  };
  for (const run of spec.runs || []) await execute(run);
  if (spec.interactive) {
    for (let line = await lines.next(); !line.done; line = await lines.next()) {
      if (!line.value.trim()) continue;
      const command = JSON.parse(line.value);
      if (command.quit) break;
      if (command.run) await execute(command.run);
      emit({ event: 'idle' });
    }
  }
  model.dispose();
  const cpu = process.cpuUsage();
  emit({ event: 'end', cpuMs: (cpu.user + cpu.system) / 1000, ...memory() });
}

main().catch((error) => {
  emit({ event: 'error', message: error && error.message ? error.message : String(error), code: error && error.code });
  process.exitCode = 1;
});
