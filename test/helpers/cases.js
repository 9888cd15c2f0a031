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
 * A copy of a fixture whose scheduler_config.json is patched (sub-folders are symlinked, so it is cheap):
 * covers scheduler settings no exported fixture has, e.g. trailing spacing.
 */
function withSchedulerPatch(fixtureDir, patch) {
  fixtureDir = path.resolve(fixtureDir);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-patched-'));
  for (const entry of fs.readdirSync(fixtureDir)) {
    if (entry === 'scheduler') continue;
    fs.symlinkSync(path.join(fixtureDir, entry), path.join(dir, entry));
  }
  fs.mkdirSync(path.join(dir, 'scheduler'));
  const config = JSON.parse(fs.readFileSync(path.join(fixtureDir, 'scheduler', 'scheduler_config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'scheduler', 'scheduler_config.json'), JSON.stringify({ ...config, ...patch }, null, 2));
  return dir;
}

module.exports = { toOracleRequest, withSchedulerPatch };
