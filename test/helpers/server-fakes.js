'use strict';
// Stand-ins for the library in server route tests: a model object with the DiffusionModel surface the server uses,
// recording its calls; and tiny PNGs made with sharp.
const sharp = require('sharp');
const { GeneratedImage, OvDiffusionError } = require('../..');

const ALL_TASKS = ['text2image', 'image2image', 'inpainting'];

/** A fake model. Each call is recorded as {task, prompt, options, image, mask}; results are flat gray images. */
function fakeModel({ tasks = ALL_TASKS, className = 'FakePipeline', delayMs = 0, width = 64, height = 64, adapters } = {}) {
  const calls = [];
  let running = 0;
  let maxRunning = 0;
  const run = async (task, prompt, options, image, mask) => {
    if (!tasks.includes(task)) throw new OvDiffusionError('ERR_INVALID_ARGUMENT', `${className} supports ${tasks.join(', ')} only, not ${task}`);
    if (options.strength !== undefined && task === 'text2image') throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'strength applies to image-to-image and inpainting only');
    calls.push({ task, prompt, options, image, mask });
    running += 1;
    maxRunning = Math.max(maxRunning, running);
    try {
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (options.signal?.aborted) throw new OvDiffusionError('ERR_ABORTED', 'the generation was cancelled');
      const w = options.width ?? width;
      const h = options.height ?? height;
      const images = Array.from({ length: options.numImagesPerPrompt ?? 1 }, (_, i) => new GeneratedImage(Buffer.alloc(w * h * 3, 40 * (i + 1)), w, h));
      return { images, seed: options.seed ?? 42, steps: options.numInferenceSteps ?? 50, scheduler: 'PNDM', width: w, height: h, metrics: {} };
    } finally {
      running -= 1;
    }
  };
  const model = {
    className,
    tasks,
    calls,
    get maxRunning() { return maxRunning; },
    get running() { return running; },
    waiting: 0,
    supports: (task) => tasks.includes(task),
    text2image: (prompt, options = {}) => run('text2image', prompt, options),
    image2image: (prompt, image, options = {}) => run('image2image', prompt, options, image),
    inpaint: (prompt, image, mask, options = {}) => run('inpainting', prompt, options, image, mask),
    dispose: () => undefined,
  };
  if (adapters) model.adapters = adapters;
  return model;
}

/** A solid-colour PNG (or another format sharp writes). */
function makeImage(width = 64, height = 64, format = 'png', colour = { r: 200, g: 30, b: 30 }) {
  return sharp({ create: { width, height, channels: 3, background: colour } })[format]().toBuffer();
}

module.exports = { fakeModel, makeImage, ALL_TASKS };
