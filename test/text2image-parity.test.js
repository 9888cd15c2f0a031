'use strict';
// Text-to-image pixels against the pinned openvino_genai on the same inputs: at most 1 (u8) apart.
const test = require('node:test');
const assert = require('node:assert/strict');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { runOracle, compareRepeated, printTable, unrepeatable } = require('./helpers/oracle');
const { toOracleRequest, withSchedulerPatch } = require('./helpers/cases');

const SCHEDULERS = ['DDIM', 'EULER_DISCRETE', 'EULER_ANCESTRAL_DISCRETE', 'PNDM', 'LCM', 'LMS_DISCRETE'];
const LONG_PROMPT = Array(14).fill('a red cat sitting on the big green mat').join(' ');

function casesFor(name, { lcm = false, xl = false, vpred = false } = {}) {
  const cases = [];
  const add = (label, options, prompt = 'a photo of a cat') => cases.push({ name: `${name} ${label}`, prompt, options });
  for (const steps of [1, 4, 9, 11, 20]) add(`steps=${steps}`, { numInferenceSteps: steps });
  for (const scheduler of SCHEDULERS) {
    // The oracle's LCM scheduler crashes the process (SIGSEGV) on v_prediction configs; we refuse them.
    if (vpred && scheduler === 'LCM') cases.push({ name: `${name} scheduler=LCM`, prompt: 'a', options: { scheduler }, weRefuse: true });
    else add(`scheduler=${scheduler}`, { numInferenceSteps: 4, scheduler, seed: 3 });
  }
  for (const seed of [0, 1234, 2 ** 32 + 5]) add(`seed=${seed}`, { numInferenceSteps: 3, seed });
  add('2 images', { numInferenceSteps: 3, numImagesPerPrompt: 2 });
  add('80x48', { numInferenceSteps: 3, width: 80, height: 48 });
  add('long prompt', { numInferenceSteps: 2 }, LONG_PROMPT);
  if (!lcm) {
    add('guidance off', { numInferenceSteps: 3, guidanceScale: 1 });
    add('negative prompt', { numInferenceSteps: 3, guidanceScale: 7, negativePrompt: 'blurry dog' });
  } else {
    add('guidance 3', { numInferenceSteps: 3, guidanceScale: 3 });
  }
  if (xl) {
    add('prompt_2', { numInferenceSteps: 3, prompt2: 'an oil painting' });
    add('negative_prompt_2', { numInferenceSteps: 3, negativePrompt: 'dog', negativePrompt2: 'grey' });
  }
  return cases;
}

const MODELS = [
  { name: 'sd15', dir: fixture('sd15') },
  { name: 'sd2-vpred', dir: fixture('sd2-vpred'), vpred: true },
  { name: 'sdxl', dir: fixture('sdxl'), xl: true },
  { name: 'lcm', dir: fixture('lcm'), lcm: true },
  {
    name: 'sd2-trailing',
    dir: withSchedulerPatch(fixture('sd2-vpred'), { timestep_spacing: 'trailing', rescale_betas_zero_snr: true }),
    vpred: true,
  },
  { name: 'sdxl-linspace', dir: withSchedulerPatch(fixture('sdxl'), { timestep_spacing: 'linspace' }), xl: true },
];

test('text-to-image matches openvino_genai pixel for pixel', async () => {
  const rows = [];
  for (const model of MODELS) {
    const all = casesFor(model.name, model);
    const ours = await DiffusionModel.load(model.dir);
    for (const { name, prompt, options } of all.filter((c) => c.weRefuse)) {
      await assert.rejects(ours.text2image(prompt, options), { code: 'ERR_INVALID_ARGUMENT' }, name);
      rows.push({ name: `${name} (we refuse; the oracle crashes)`, maxDiff: 0, exact: 1 });
    }
    const cases = all.filter((c) => !c.weRefuse);
    const oracle = await runOracle(cases.map((c) => toOracleRequest('text2image', model.dir, c.prompt, c.options)));
    // Every case twice in a row, then the first case again after all the others.
    for (const i of [...cases.keys(), 0]) {
      const { prompt, options } = cases[i];
      const name = rows.some((r) => r.name === cases[i].name) ? `${cases[i].name} (again, after the other cases)` : cases[i].name;
      if (oracle[i].error) {
        // The oracle refuses this combination (e.g. DDIM on a config with clip_sample); so must we.
        await assert.rejects(ours.text2image(prompt, options), { code: 'ERR_INVALID_ARGUMENT' }, `${name}: oracle said ${oracle[i].error}`);
        rows.push({ name: `${name} (both refuse)`, maxDiff: 0, exact: 1 });
        continue;
      }
      const { result, ...compared } = await compareRepeated(() => ours.text2image(prompt, options), oracle[i].data);
      const [n, h, w] = oracle[i].shape;
      assert.equal(result.images.length, n, name);
      assert.deepEqual([result.height, result.width], [h, w], name);
      rows.push({ name, ...compared });
    }
    ours.dispose();
  }
  printTable('text-to-image parity (ours vs openvino_genai)', rows);
  const failing = rows.filter((r) => r.maxDiff > 1);
  assert.deepEqual(failing, [], 'cases over 1 (u8) apart');
  assert.deepEqual(unrepeatable(rows), [], 'repeated calls gave different pixels');
});
