'use strict';
// A Qwen-Image model through the server with the real engine: /v3/models reports its family and tasks, the OVMS
// fields reach the engine (the pixels are the library's, which the parity test holds to the oracle's), an edit is
// SDEdit at the size asked for (else the model's default size, not the input's), and what Qwen-Image refuses is a 400
// naming the field.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { fixture } = require('./helpers/paths');
const { cliForTests, assertLibraryPixels, imageForm } = require('./helpers/server-http');
const { editInputs } = require('./helpers/images');

const DIR = fixture('qwen-image');
const server = cliForTests(['--model_path', DIR, '--model_name', 'qwen']);
const { postImage, postRefused } = server;

test('/v3/models reports the Qwen-Image family and its tasks', () =>
  server.assertModelReport('qwen', { className: 'QwenImagePipeline', family: 'Qwen-Image', tasks: ['image2image', 'text2image'] }));

test('generations with the OVMS fields give the library pixels; refusals are 400s naming the field', async () => {
  const { data, info } = await postImage('generations', {
    model: 'qwen',
    prompt: 'a red fox',
    negative_prompt: 'blurry',
    guidance_scale: 3,
    size: '64x48',
    num_inference_steps: 4,
    rng_seed: 5,
    max_sequence_length: 64,
  });
  assert.deepEqual([info.width, info.height], [64, 48]);
  await assertLibraryPixels(data, DIR, (model) =>
    model.text2image('a red fox', {
      negativePrompt: 'blurry',
      guidanceScale: 3,
      width: 64,
      height: 48,
      numInferenceSteps: 4,
      seed: 5,
      maxSequenceLength: 64,
    }),
  );

  const refusals = [
    [{ negative_prompt: 'blurry', guidance_scale: 1 }, 'negative_prompt'],
    [{ prompt_2: 'y' }, 'prompt_2'],
    [{ max_sequence_length: 1025 }, 'max_sequence_length'],
    [{ size: '66x64' }, 'width'],
  ];
  for (const [fields, param] of refusals) {
    assert.equal(
      (await postRefused('generations', { model: 'qwen', prompt: 'x', size: '64x64', num_inference_steps: 1, ...fields }, param)).param,
      param,
    );
  }
});

test('edits are SDEdit generations (the library pixels); no inpainting', async () => {
  const files = await editInputs();
  const fields = { model: 'qwen', prompt: 'a watercolor fox', num_inference_steps: '3', rng_seed: '3' };
  const { data, info } = await postImage('edits', imageForm({ ...fields, strength: '0.7', size: '64x64' }, { image: files.image }));
  assert.deepEqual([info.width, info.height], [64, 64]);
  await assertLibraryPixels(data, DIR, (model) =>
    model.image2image('a watercolor fox', fs.readFileSync(files.image), {
      numInferenceSteps: 3,
      seed: 3,
      strength: 0.7,
      width: 64,
      height: 64,
    }),
  );

  const refused = await postRefused(
    'edits',
    imageForm({ model: 'qwen', prompt: 'x', num_inference_steps: '1' }, { image: files.image, mask: files.boxMask }),
  );
  assert.match(refused.message, /text-to-image, image-to-image only|inpaint/i);
});
