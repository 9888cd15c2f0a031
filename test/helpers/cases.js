'use strict';
// Shared plumbing for parity tests: our camelCase options <-> the oracle's snake_case request.
const fs = require('fs');
const os = require('os');
const path = require('path');

const ORACLE_NAMES = {
  prompt2: 'prompt_2',
  prompt3: 'prompt_3',
  negativePrompt: 'negative_prompt',
  negativePrompt2: 'negative_prompt_2',
  negativePrompt3: 'negative_prompt_3',
  width: 'width',
  height: 'height',
  numInferenceSteps: 'num_inference_steps',
  guidanceScale: 'guidance_scale',
  numImagesPerPrompt: 'num_images_per_prompt',
  seed: 'rng_seed',
  strength: 'strength',
  maxSequenceLength: 'max_sequence_length',
  scheduler: 'scheduler',
};

function toOracleRequest(pipeline, model, prompt, options, extra = {}) {
  const request = { pipeline, model, device: 'CPU', prompt, ...extra };
  for (const [ours, theirs] of Object.entries(ORACLE_NAMES)) if (options[ours] !== undefined) request[theirs] = options[ours];
  return request;
}

/**
 * A copy of a fixture whose JSON file `relative` (top level or one folder down) has `patch` merged in; everything
 * else is symlinked, so it is cheap.
 */
function withJsonPatch(fixtureDir, relative, patch) {
  fixtureDir = path.resolve(fixtureDir);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-patched-'));
  const [top, inner] = relative.split('/');
  for (const entry of fs.readdirSync(fixtureDir)) {
    if (entry !== top) fs.symlinkSync(path.join(fixtureDir, entry), path.join(dir, entry));
  }
  if (inner) {
    fs.mkdirSync(path.join(dir, top));
    for (const entry of fs.readdirSync(path.join(fixtureDir, top))) {
      if (entry !== inner) fs.symlinkSync(path.join(fixtureDir, top, entry), path.join(dir, top, entry));
    }
  }
  const config = JSON.parse(fs.readFileSync(path.join(fixtureDir, relative), 'utf8'));
  fs.writeFileSync(path.join(dir, relative), JSON.stringify({ ...config, ...patch }, null, 2));
  return dir;
}

/** A copy of a fixture whose scheduler_config.json is patched: covers scheduler settings no exported fixture has. */
const withSchedulerPatch = (fixtureDir, patch) => withJsonPatch(fixtureDir, 'scheduler/scheduler_config.json', patch);

/**
 * Case builders for the parity tables: `textToImageCase(defaults)` gives `(name, options, extra) => case` with the
 * table's default options (e.g. its width and height) under each case's own.
 */
const textToImageCase =
  (defaults = {}) =>
  (name, options, extra = {}) => ({ name, task: 'text2image', options: { ...defaults, ...options }, ...extra });
const imageToImageCase = (name, image, options) => ({ name, task: 'image2image', image, options });

// A prompt long enough (14 x 9 words) that maxSequenceLength 64 cuts it in every family's tokenization.
const LONG_PROMPT = Array(14).fill('a red cat sitting on the big green mat').join(' ');

module.exports = { LONG_PROMPT, toOracleRequest, withJsonPatch, withSchedulerPatch, textToImageCase, imageToImageCase };
