'use strict';
// A Z-Image model through the server with the real engine: /v3/models reports its family and tasks, the OVMS fields
// reach the engine (the pixels are the library's, which the parity test holds to the oracle's), image edits run at
// the input's size, and what Z-Image refuses is a 400 naming the field.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const sharp = require('sharp');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { startCli } = require('./helpers/server-http');
const { pixels } = require('./helpers/oracle');
const { editInputs } = require('./helpers/images');

let server;
test.before(async () => {
  server = await startCli(['--model_path', fixture('z-image'), '--model_name', 'zimage']);
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

test('/v3/models reports the Z-Image family and its tasks', async () => {
  const model = await (await fetch(`${server.url}/v3/models/zimage`)).json();
  assert.equal(model.class_name, 'ZImagePipeline');
  assert.equal(model.family, 'Z-Image');
  assert.deepEqual([...model.tasks].sort(), ['image2image', 'text2image']);
});

test('generations with the OVMS fields give the library pixels; refusals are 400s naming the field', async () => {
  const fields = {
    prompt: 'a red fox',
    size: '64x48',
    num_inference_steps: 4,
    guidance_scale: 2,
    negative_prompt: 'blurry',
    rng_seed: 5,
    max_sequence_length: 64,
  };
  const res = await post('generations', { model: 'zimage', ...fields });
  assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
  const { data, info } = await raw(res.json);
  assert.deepEqual([info.width, info.height], [64, 48]);
  const model = await DiffusionModel.load(fixture('z-image'));
  const mine = await model.text2image('a red fox', {
    width: 64,
    height: 48,
    numInferenceSteps: 4,
    guidanceScale: 2,
    negativePrompt: 'blurry',
    seed: 5,
    maxSequenceLength: 64,
  });
  model.dispose();
  assert.ok(Buffer.compare(data, Buffer.from(pixels(mine))) === 0, 'the server returns the library pixels');

  const negative = await post('generations', {
    model: 'zimage',
    prompt: 'x',
    size: '64x64',
    num_inference_steps: 1,
    guidance_scale: 0,
    negative_prompt: 'y',
  });
  assert.equal(negative.status, 400, JSON.stringify(negative.json).slice(0, 300));
  assert.equal(negative.json.error.param, 'negative_prompt');
  const prompt2 = await post('generations', { model: 'zimage', prompt: 'x', size: '64x64', num_inference_steps: 1, prompt_2: 'y' });
  assert.equal(prompt2.status, 400, JSON.stringify(prompt2.json).slice(0, 300));
  assert.equal(prompt2.json.error.param, 'prompt_2');
});

test('edits run at the input image size; Z-Image has no inpainting', async () => {
  const files = await editInputs();
  const body = new FormData();
  for (const [k, v] of Object.entries({
    model: 'zimage',
    prompt: 'a watercolor fox',
    num_inference_steps: '3',
    guidance_scale: '0',
    strength: '0.7',
  }))
    body.append(k, v);
  body.append('image', new Blob([fs.readFileSync(files.image)]), 'image.png');
  const edit = await post('edits', body);
  assert.equal(edit.status, 200, JSON.stringify(edit.json).slice(0, 300));
  const { info } = await raw(edit.json);
  assert.deepEqual([info.width, info.height], [80, 72]);

  const inpaint = new FormData();
  for (const [k, v] of Object.entries({ model: 'zimage', prompt: 'x', num_inference_steps: '1' })) inpaint.append(k, v);
  inpaint.append('image', new Blob([fs.readFileSync(files.image)]), 'image.png');
  inpaint.append('mask', new Blob([fs.readFileSync(files.boxMask)]), 'mask.png');
  const refused = await post('edits', inpaint);
  assert.equal(refused.status, 400, JSON.stringify(refused.json).slice(0, 300));
  assert.match(refused.json.error.message, /text-to-image, image-to-image only|inpaint/i);
});
