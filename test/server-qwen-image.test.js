'use strict';
// A Qwen-Image model through the server with the real engine: /v3/models reports its family and tasks, the OVMS
// fields reach the engine (the pixels are the library's, which the parity test holds to the oracle's), an edit is
// SDEdit at the size asked for (else the model's default size, not the input's), and what Qwen-Image refuses is a 400
// naming the field.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const sharp = require('sharp');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { startCli } = require('./helpers/server-http');
const { pixels } = require('./helpers/oracle');
const { editInputs } = require('./helpers/images');

const DIR = fixture('qwen-image');
let server;
test.before(async () => {
  server = await startCli(['--model_path', DIR, '--model_name', 'qwen']);
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

test('/v3/models reports the Qwen-Image family and its tasks', async () => {
  const model = await (await fetch(`${server.url}/v3/models/qwen`)).json();
  assert.equal(model.class_name, 'QwenImagePipeline');
  assert.equal(model.family, 'Qwen-Image');
  assert.deepEqual([...model.tasks].sort(), ['image2image', 'text2image']);
});

test('generations with the OVMS fields give the library pixels; refusals are 400s naming the field', async () => {
  const res = await post('generations', {
    model: 'qwen',
    prompt: 'a red fox',
    negative_prompt: 'blurry',
    guidance_scale: 3,
    size: '64x48',
    num_inference_steps: 4,
    rng_seed: 5,
    max_sequence_length: 64,
  });
  assert.equal(res.status, 200, JSON.stringify(res.json).slice(0, 300));
  const { data, info } = await raw(res.json);
  assert.deepEqual([info.width, info.height], [64, 48]);
  const model = await DiffusionModel.load(DIR);
  const mine = await model.text2image('a red fox', {
    negativePrompt: 'blurry',
    guidanceScale: 3,
    width: 64,
    height: 48,
    numInferenceSteps: 4,
    seed: 5,
    maxSequenceLength: 64,
  });
  model.dispose();
  assert.ok(Buffer.compare(data, Buffer.from(pixels(mine))) === 0, 'the server returns the library pixels');

  const refusals = [
    [{ negative_prompt: 'blurry', guidance_scale: 1 }, 'negative_prompt'],
    [{ prompt_2: 'y' }, 'prompt_2'],
    [{ max_sequence_length: 1025 }, 'max_sequence_length'],
    [{ size: '66x64' }, 'width'],
  ];
  for (const [fields, param] of refusals) {
    const refused = await post('generations', { model: 'qwen', prompt: 'x', size: '64x64', num_inference_steps: 1, ...fields });
    assert.equal(refused.status, 400, `${param}: ${JSON.stringify(refused.json).slice(0, 300)}`);
    assert.equal(refused.json.error.param, param);
  }
});

test('edits are SDEdit generations (the library pixels); no inpainting', async () => {
  const files = await editInputs();
  const fields = { model: 'qwen', prompt: 'a watercolor fox', num_inference_steps: '3', rng_seed: '3' };
  const edit = await post('edits', form({ ...fields, strength: '0.7', size: '64x64' }, { image: files.image }));
  assert.equal(edit.status, 200, JSON.stringify(edit.json).slice(0, 300));
  const { data, info } = await raw(edit.json);
  assert.deepEqual([info.width, info.height], [64, 64]);
  const model = await DiffusionModel.load(DIR);
  const mine = await model.image2image('a watercolor fox', fs.readFileSync(files.image), {
    numInferenceSteps: 3,
    seed: 3,
    strength: 0.7,
    width: 64,
    height: 64,
  });
  model.dispose();
  assert.ok(Buffer.compare(data, Buffer.from(pixels(mine))) === 0, 'the server returns the library pixels');

  const refused = await post(
    'edits',
    form({ model: 'qwen', prompt: 'x', num_inference_steps: '1' }, { image: files.image, mask: files.boxMask }),
  );
  assert.equal(refused.status, 400, JSON.stringify(refused.json).slice(0, 300));
  assert.match(refused.json.error.message, /text-to-image, image-to-image only|inpaint/i);
});
