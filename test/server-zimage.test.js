'use strict';
// A Z-Image model through the server with the real engine: /v3/models reports its family and tasks, the OVMS fields
// reach the engine (the pixels are the library's, which the parity test holds to the oracle's), image edits run at
// the input's size, and what Z-Image refuses is a 400 naming the field.
const test = require('node:test');
const assert = require('node:assert/strict');
const { fixture } = require('./helpers/paths');
const { cliForTests, assertLibraryPixels, imageForm } = require('./helpers/server-http');
const { editInputs } = require('./helpers/images');

const server = cliForTests(['--model_path', fixture('z-image'), '--model_name', 'zimage']);
const { postImage, postRefused } = server;

test('/v3/models reports the Z-Image family and its tasks', () =>
  server.assertModelReport('zimage', { className: 'ZImagePipeline', family: 'Z-Image', tasks: ['image2image', 'text2image'] }));

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
  const { data, info } = await postImage('generations', { model: 'zimage', ...fields });
  assert.deepEqual([info.width, info.height], [64, 48]);
  await assertLibraryPixels(data, fixture('z-image'), (model) =>
    model.text2image('a red fox', {
      width: 64,
      height: 48,
      numInferenceSteps: 4,
      guidanceScale: 2,
      negativePrompt: 'blurry',
      seed: 5,
      maxSequenceLength: 64,
    }),
  );

  const negative = await postRefused('generations', {
    model: 'zimage',
    prompt: 'x',
    size: '64x64',
    num_inference_steps: 1,
    guidance_scale: 0,
    negative_prompt: 'y',
  });
  assert.equal(negative.param, 'negative_prompt');
  const prompt2 = await postRefused('generations', { model: 'zimage', prompt: 'x', size: '64x64', num_inference_steps: 1, prompt_2: 'y' });
  assert.equal(prompt2.param, 'prompt_2');
});

test('edits run at the input image size; Z-Image has no inpainting', async () => {
  const files = await editInputs();
  const { info } = await postImage(
    'edits',
    imageForm(
      { model: 'zimage', prompt: 'a watercolor fox', num_inference_steps: '3', guidance_scale: '0', strength: '0.7' },
      { image: files.image },
    ),
  );
  assert.deepEqual([info.width, info.height], [80, 72]);

  const refused = await postRefused(
    'edits',
    imageForm({ model: 'zimage', prompt: 'x', num_inference_steps: '1' }, { image: files.image, mask: files.boxMask }),
  );
  assert.match(refused.message, /text-to-image, image-to-image only|inpaint/i);
});
