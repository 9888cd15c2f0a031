'use strict';
// A FLUX.2 klein model through the server with the real engine: /v3/models reports its family and tasks, the OVMS
// fields reach the engine (the pixels are the library's, which the parity test holds to the oracle's), an edit is
// reference-image conditioning at the input's size (or the size asked for), and what klein refuses is a 400 naming
// the field.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const sharp = require('sharp');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { startCli } = require('./helpers/server-http');
const { pixels } = require('./helpers/oracle');
const { editInputs } = require('./helpers/images');

const DIR = fixture('flux2-klein');
let server;
test.before(async () => {
  server = await startCli(['--model_path', DIR, '--model_name', 'klein']);
});
test.after(async () => {
  await server?.stop();
});

async function post(route, body) {
  const res = await fetch(
    `${server.url}/v3/images/${route}`,
    body instanceof FormData
      ? { method: 'POST', body }
      : {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        },
  );
  return { status: res.status, json: await res.json() };
}

const raw = async (json) => sharp(Buffer.from(json.data[0].b64_json, 'base64')).raw().toBuffer({ resolveWithObject: true });

function form(fields, files) {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  for (const [k, file] of Object.entries(files)) body.append(k, new Blob([fs.readFileSync(file)]), `${k}.png`);
  return body;
}

test('/v3/models reports the FLUX.2 klein family and its tasks', async () => {
  const model = await (await fetch(`${server.url}/v3/models/klein`)).json();
  assert.equal(model.class_name, 'Flux2KleinPipeline');
  assert.equal(model.family, 'FLUX.2 klein');
  assert.deepEqual([...model.tasks].sort(), ['image2image', 'text2image']);
});

test('generations with the OVMS fields give the library pixels; refusals are 400s naming the field', async () => {
  const res = await post('generations', {
    model: 'klein',
    prompt: 'a red fox',
    size: '64x48',
    num_inference_steps: 4,
    rng_seed: 5,
    max_sequence_length: 64,
  });
  assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
  const { data, info } = await raw(res.json);
  assert.deepEqual([info.width, info.height], [64, 48]);
  const model = await DiffusionModel.load(DIR);
  const mine = await model.text2image('a red fox', { width: 64, height: 48, numInferenceSteps: 4, seed: 5, maxSequenceLength: 64 });
  model.dispose();
  assert.ok(Buffer.compare(data, Buffer.from(pixels(mine))) === 0, 'the server returns the library pixels');

  const refusals = [
    [{ negative_prompt: 'blurry' }, 'negative_prompt'],
    [{ prompt_2: 'y' }, 'prompt_2'],
    [{ max_sequence_length: 513 }, 'max_sequence_length'],
    [{ size: '66x64' }, 'width'],
  ];
  for (const [fields, param] of refusals) {
    const refused = await post('generations', { model: 'klein', prompt: 'x', size: '64x64', num_inference_steps: 1, ...fields });
    assert.equal(refused.status, 400, `${param}: ${JSON.stringify(refused.json).slice(0, 300)}`);
    assert.equal(refused.json.error.param, param);
  }
});

test('edits are reference-image generations (the library pixels, strength has no effect); no inpainting', async () => {
  const files = await editInputs();
  const fields = { model: 'klein', prompt: 'a watercolor fox', num_inference_steps: '3', rng_seed: '3' };
  const edit = await post('edits', form({ ...fields, strength: '0.3' }, { image: files.image }));
  assert.equal(edit.status, 200, JSON.stringify(edit.json).slice(0, 300));
  const { data, info } = await raw(edit.json);
  assert.deepEqual([info.width, info.height], [80, 72]);
  const model = await DiffusionModel.load(DIR);
  const mine = await model.image2image('a watercolor fox', fs.readFileSync(files.image), { numInferenceSteps: 3, seed: 3 });
  model.dispose();
  assert.ok(Buffer.compare(data, Buffer.from(pixels(mine))) === 0, 'the server returns the library pixels, strength 0.3 or not');

  const sized = await post('edits', form({ ...fields, size: '64x64' }, { image: files.image }));
  assert.equal(sized.status, 200, JSON.stringify(sized.json).slice(0, 300));
  const { info: sizedInfo } = await raw(sized.json);
  assert.deepEqual([sizedInfo.width, sizedInfo.height], [64, 64]);

  const refused = await post(
    'edits',
    form({ model: 'klein', prompt: 'x', num_inference_steps: '1' }, { image: files.image, mask: files.boxMask }),
  );
  assert.equal(refused.status, 400, JSON.stringify(refused.json).slice(0, 300));
  assert.match(refused.json.error.message, /text-to-image, image-to-image only|inpaint/i);
});
