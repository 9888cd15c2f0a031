'use strict';
// Stand-ins for the library in server route tests: a model object with the DiffusionModel surface the server uses,
// recording its calls; and tiny PNGs made with sharp.
const sharp = require('sharp');
const { GeneratedImage, OvDiffusionError, SCHEDULER_NAMES } = require('../..');
const { ConcurrencyLimiter } = require('../../dist/limiter');
const { AdapterRegistry } = require('../../dist/adapters');

const ALL_TASKS = ['text2image', 'image2image', 'inpainting'];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A fake model. Each call is recorded as {task, prompt, options, image, mask}; results are flat gray images.
 * delayMs: one wait per call. stepMs: numInferenceSteps steps of that length, each reported to onStep (with
 * `previews` gray previews at evenly spread steps) and each a point where the signal cancels, like the engine.
 * maxConcurrency / maxQueue / queueTimeoutMs: the library's own limiter (ERR_QUEUE_FULL, ERR_QUEUE_TIMEOUT).
 * lora: the LoRA load options ({adapters, adapterPresets}, as the launcher's loraLoadOptions makes them); the fake
 * resolves adapter selections with the library's own AdapterRegistry.
 * sizeFromImage: image-to-image without width/height runs at the input's size rounded down to 8 (the SD engine's rule).
 * Like the library, each call reports what it will run to options.admit before it queues.
 */
function fakeModel({
  tasks = ALL_TASKS,
  className = 'FakePipeline',
  delayMs = 0,
  stepMs,
  width = 64,
  height = 64,
  lora = {},
  maxConcurrency = 1000,
  maxQueue,
  queueTimeoutMs,
  sizeFromImage = false,
} = {}) {
  const calls = [];
  const limiter = new ConcurrencyLimiter(maxConcurrency, { maxQueue, queueTimeoutMs });
  let running = 0;
  let maxRunning = 0;
  let stepsRun = 0;
  const cancelled = () => new OvDiffusionError('ERR_ABORTED', 'the generation was cancelled');
  const run = async (task, prompt, options, image, mask) => {
    if (!tasks.includes(task))
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `${className} supports ${tasks.join(', ')} only, not ${task}`);
    // The engine's rules that server tests rely on.
    if (options.scheduler === 'FLOW_MATCH_EULER_DISCRETE' && !/^(StableDiffusion3|Flux)/.test(className))
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'scheduler FLOW_MATCH_EULER_DISCRETE is for SD3 and FLUX', { param: 'scheduler' });
    if (options.strength !== undefined && task === 'text2image')
      throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'strength applies to image-to-image and inpainting only', { param: 'strength' });
    // As the library: validate, then tell admit what will run (image-to-image follows the input's size when
    // sizeFromImage is set, as the SD engine does), then queue.
    let imageSize;
    if (sizeFromImage && task === 'image2image' && image) {
      const meta = await sharp(image).metadata();
      imageSize = { width: Math.floor(meta.width / 8) * 8, height: Math.floor(meta.height / 8) * 8 };
    }
    options.admit?.({
      task,
      width: options.width ?? imageSize?.width ?? width,
      height: options.height ?? imageSize?.height ?? height,
      numImagesPerPrompt: options.numImagesPerPrompt ?? 1,
      numInferenceSteps: options.numInferenceSteps ?? 50,
    });
    calls.push({ task, prompt, options, image, mask });
    const queuedAt = performance.now();
    return limiter
      .run(
        async () => {
          const queueMs = performance.now() - queuedAt;
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          try {
            if (options.signal?.aborted) throw cancelled();
            options.onRunning?.();
            const w = options.width ?? imageSize?.width ?? width;
            const h = options.height ?? imageSize?.height ?? height;
            const n = options.numImagesPerPrompt ?? 1;
            const gray = (value) => Array.from({ length: n }, (_, i) => new GeneratedImage(Buffer.alloc(w * h * 3, value + 40 * i), w, h));
            const stepDurations = [];
            if (delayMs) await sleep(delayMs);
            if (stepMs !== undefined) {
              const total = options.numInferenceSteps ?? 50;
              const previews = Math.min(options.previews ?? 0, total);
              const previewSteps = new Set(Array.from({ length: previews }, (_, k) => Math.floor(((k + 1) * total) / (previews + 1))));
              for (let step = 0; step < total; step++) {
                if (options.signal?.aborted) throw cancelled();
                await sleep(stepMs);
                stepsRun += 1;
                stepDurations.push(stepMs);
                options.onStep?.({ step, totalSteps: total, preview: previewSteps.has(step) ? gray(10 + step) : undefined });
              }
            }
            if (options.signal?.aborted) throw cancelled();
            return {
              images: gray(40),
              seed: options.seed ?? 42,
              steps: options.numInferenceSteps ?? 50,
              scheduler: options.scheduler ?? 'PNDM',
              width: w,
              height: h,
              metrics: { stepMs: stepDurations, totalMs: stepDurations.reduce((a, b) => a + b, delayMs), queueMs },
            };
          } finally {
            running -= 1;
          }
        },
        options.signal,
        options.onQueuePosition,
      )
      .catch((error) => {
        if (options.signal?.aborted && !(error instanceof OvDiffusionError)) throw cancelled();
        throw error;
      });
  };
  const adapterRegistry = new AdapterRegistry(lora.adapters, lora.adapterPresets);
  const flowMatching = /^(StableDiffusion3|Flux)/.test(className);
  const model = {
    className,
    tasks,
    // As the engine: AUTO and the schedulers of the model's kind.
    schedulers: SCHEDULER_NAMES.filter((name) => name === 'AUTO' || (name === 'FLOW_MATCH_EULER_DISCRETE') === flowMatching),
    calls,
    get maxRunning() {
      return maxRunning;
    },
    get running() {
      return running;
    },
    get waiting() {
      return limiter.queued;
    },
    get stepsRun() {
      return stepsRun;
    },
    supports: (task) => tasks.includes(task),
    text2image: (prompt, options = {}) => run('text2image', prompt, options),
    image2image: (prompt, image, options = {}) => run('image2image', prompt, options, image),
    inpaint: (prompt, image, mask, options = {}) => run('inpainting', prompt, options, image, mask),
    adapterChoices: (selection) => adapterRegistry.choices(selection),
    dispose: () => undefined,
  };
  return model;
}

/** A solid-colour PNG (or another format sharp writes). */
function makeImage(width = 64, height = 64, format = 'png', colour = { r: 200, g: 30, b: 30 }) {
  const image = sharp({ create: { width, height, channels: 3, background: colour } });
  return image[format]().toBuffer();
}

/** The PNG's chunks as [type, data] pairs. */
function pngChunks(bytes) {
  const chunks = [];
  for (let o = 8; o + 8 <= bytes.length;) {
    const length = bytes.readUInt32BE(o);
    chunks.push([bytes.toString('latin1', o + 4, o + 8), bytes.subarray(o + 8, o + 8 + length), bytes.subarray(o, o + 12 + length)]);
    o += 12 + length;
  }
  return chunks;
}

/** The text chunks of a PNG (tEXt Latin-1, uncompressed iTXt UTF-8), keyword -> text. */
function pngText(bytes) {
  const out = {};
  for (const [type, data] of pngChunks(bytes)) {
    const zero = data.indexOf(0);
    if (type === 'tEXt') out[data.toString('latin1', 0, zero)] = data.toString('latin1', zero + 1);
    if (type === 'iTXt') {
      // keyword 0 flag method language 0 translated 0 text
      const language = data.indexOf(0, zero + 3);
      const translated = data.indexOf(0, language + 1);
      out[data.toString('latin1', 0, zero)] = data.toString('utf8', translated + 1);
    }
  }
  return out;
}

/** The PNG without its text chunks: equal for equal pixels whatever the metadata. */
function pngWithoutText(bytes) {
  return Buffer.concat([
    bytes.subarray(0, 8),
    ...pngChunks(bytes)
      .filter(([type]) => type !== 'tEXt' && type !== 'iTXt')
      .map(([, , whole]) => whole),
  ]);
}

module.exports = { fakeModel, makeImage, pngText, pngWithoutText, ALL_TASKS };
