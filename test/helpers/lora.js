'use strict';
// LoRA parity against openvino_genai's AdapterConfig: one model with adapters a and b registered, every choice of them
// compared with the oracle's image for the same pool.
const assert = require('node:assert/strict');
const path = require('path');
const { DiffusionModel } = require('../..');
const { fixture } = require('./paths');
const { runOracle, compareRepeated } = require('./oracle');

const lora = (name) => path.join(fixture('loras'), `${name}.safetensors`);
const PROMPT = 'a cat';
const STEPS = 3;

const CASES = [
  { label: 'a@0.5', ours: [{ name: 'a', alpha: 0.5 }], oracle: (a) => [{ path: a, alpha: 0.5 }] },
  { label: 'a@1.0', ours: [{ name: 'a', alpha: 1.0 }], oracle: (a) => [{ path: a, alpha: 1.0 }] },
  {
    label: 'a@0.7+b@0.4',
    ours: [
      { name: 'a', alpha: 0.7 },
      { name: 'b', alpha: 0.4 },
    ],
    oracle: (a, b) => [
      { path: a, alpha: 0.7 },
      { path: b, alpha: 0.4 },
    ],
  },
  { label: 'none after adapters', ours: [], oracle: () => [] },
];

function meanAbs(x, y) {
  let sum = 0;
  for (let i = 0; i < x.length; i += 1) sum += Math.abs(x[i] - y[i]);
  return sum / x.length;
}

/**
 * Runs every case on one model with adapters a and b registered, against the oracle with the same pool: each case
 * twice in a row, then the first case again after the other choices. `properties` go to both sides' compile.
 */
async function compareStyle(model, style, properties = undefined) {
  const [a, b] = [lora(`${model}-${style}-a`), lora(`${model}-${style}-b`)];
  const dir = fixture(model);
  const requests = CASES.map((c) => ({
    pipeline: 'text2image',
    model: dir,
    prompt: PROMPT,
    num_inference_steps: STEPS,
    adapters: c.oracle(a, b),
    adapters_pool: [{ path: a }, { path: b }],
    properties,
  }));
  requests.push({ pipeline: 'text2image', model: dir, prompt: PROMPT, num_inference_steps: STEPS, properties }); // the base model
  const oracle = await runOracle(requests);
  const ours = await DiffusionModel.load(dir, { adapters: { a, b }, properties });
  const rows = [];
  for (const [k, i] of [...CASES.keys(), 0].entries()) {
    assert.ok(!oracle[i].error, oracle[i].error);
    const call = () => ours.text2image(PROMPT, { numInferenceSteps: STEPS, adapters: CASES[i].ours });
    const { result, ...compared } = await compareRepeated(call, oracle[i].data);
    assert.equal(result.images.length, 1);
    rows.push({
      name: `${model} ${style} ${CASES[i].label}${k === CASES.length ? ' (again, after the others)' : ''}`,
      ...compared,
      adapterEffect: meanAbs(oracle[i].data, oracle[CASES.length].data),
    });
  }
  const report = ours.adapters;
  ours.dispose();
  return { rows, report };
}

module.exports = { lora, compareStyle, meanAbs, PROMPT };
