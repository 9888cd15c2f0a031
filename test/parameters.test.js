'use strict';
// One table of generation parameters (lib/parameters.ts): the engine reads the same list, the docs table is generated
// from it, the server takes its fields, and errors name the parameter at fault in each layer's own words.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawnSync } = require('child_process');
const { DiffusionModel, GENERATION_PARAMETERS, SCHEDULER_NAMES } = require('..');
const { binding } = require('../dist/binding');
const { ROOT, fixture } = require('./helpers/paths');
const { withApp } = require('./helpers/server-http');

test('the engine converts exactly the parameters of lib/parameters.ts, with the same kinds', () => {
  assert.deepEqual(
    binding().generationParameters(),
    GENERATION_PARAMETERS.map((p) => ({ name: p.field, kind: p.type })),
  );
});

test('the engine accepts exactly the scheduler names of lib/parameters.ts; each model lists the ones of its kind', async () => {
  assert.deepEqual(binding().schedulerNames(), [...SCHEDULER_NAMES]);
  const sd3 = await DiffusionModel.load(fixture('sd3'));
  try {
    assert.deepEqual(sd3.schedulers, ['AUTO', 'FLOW_MATCH_EULER_DISCRETE']);
    await assert.rejects(sd3.text2image('a cat', { numInferenceSteps: 1, scheduler: 'DPMPP_2M' }), {
      code: 'ERR_INVALID_ARGUMENT',
      param: 'scheduler',
    });
  } finally {
    sd3.dispose();
  }
});

test('docs/server.md has the table as lib/parameters.ts generates it', () => {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'docs-parameters.js'), '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('library errors name the option at fault by its library name; the server by its request field', async () => {
  const model = await DiffusionModel.load(fixture('sd15'));
  const cases = [
    [{ numInferenceSteps: 1.5 }, 'numInferenceSteps', /num_inference_steps must be an integer/],
    [{ strength: 0.5 }, 'strength', /strength applies to image-to-image/],
    [{ width: 61 }, 'width', /divisible by/],
    [{ maxSequenceLength: 64 }, 'maxSequenceLength', /Stable Diffusion 3 and FLUX only/],
    [{ prompt3: 'x' }, 'prompt3', /prompt_3/],
    [{ scheduler: 'NOPE' }, 'scheduler', /scheduler/i],
    [{ seed: -1 }, 'seed', /rng_seed must be a non-negative integer/],
    [{ adapters: 'none-registered' }, 'adapters', /unknown adapter/],
    [{ taylorseer: true }, 'taylorseer', /Stable Diffusion 3 and FLUX only/],
  ];
  for (const [options, param, message] of cases) {
    await assert.rejects(model.text2image('a cat', { numInferenceSteps: 1, ...options }), (e) => {
      assert.equal(e.code, 'ERR_INVALID_ARGUMENT', JSON.stringify(options));
      assert.equal(e.param, param, `${JSON.stringify(options)}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  }
  await assert.rejects(model.image2image('a cat', Buffer.from('not an image')), { code: 'ERR_INVALID_ARGUMENT', param: 'image' });
  model.dispose();

  await withApp([{ name: 'sd15', model: await DiffusionModel.load(fixture('sd15')) }], async (url) => {
    for (const [body, field] of [
      [{ width: 61, height: 64 }, 'width'],
      [{ strength: 0.5 }, 'strength'],
      [{ prompt_3: 'x' }, 'prompt_3'],
      [{ max_sequence_length: 64 }, 'max_sequence_length'],
    ]) {
      const res = await fetch(`${url}/v3/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'sd15', prompt: 'a cat', num_inference_steps: 1, ...body }),
      });
      const json = await res.json();
      assert.equal(res.status, 400, JSON.stringify(json));
      assert.equal(json.error.param, field, `${JSON.stringify(body)}: ${json.error.message}`);
    }
  });
});
