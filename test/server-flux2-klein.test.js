'use strict';
// A FLUX.2 klein model through the server with the real engine: /v3/models reports its family and tasks, the OVMS
// fields reach the engine (the pixels are the library's, which the parity test holds to the oracle's), an edit is
// reference-image conditioning at the input's size (or the size asked for), and what klein refuses is a 400 naming
// the field.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { fixture } = require('./helpers/paths');
const { cliForTests, assertLibraryPixels, imageForm } = require('./helpers/server-http');
const { editInputs } = require('./helpers/images');

const DIR = fixture('flux2-klein');
const server = cliForTests(['--model_path', DIR, '--model_name', 'klein']);
const { postImage, postRefused } = server;

test('/v3/models reports the FLUX.2 klein family and its tasks', () =>
  server.assertModelReport('klein', { className: 'Flux2KleinPipeline', family: 'FLUX.2 klein', tasks: ['image2image', 'text2image'] }));

test('generations with the OVMS fields give the library pixels; refusals are 400s naming the field', async () => {
  const { data, info } = await postImage('generations', {
    model: 'klein',
    prompt: 'a red fox',
    size: '64x48',
    num_inference_steps: 4,
    rng_seed: 5,
    max_sequence_length: 64,
  });
  assert.deepEqual([info.width, info.height], [64, 48]);
  await assertLibraryPixels(data, DIR, (model) =>
    model.text2image('a red fox', { width: 64, height: 48, numInferenceSteps: 4, seed: 5, maxSequenceLength: 64 }),
  );

  const refusals = [
    [{ negative_prompt: 'blurry' }, 'negative_prompt'],
    [{ prompt_2: 'y' }, 'prompt_2'],
    [{ max_sequence_length: 513 }, 'max_sequence_length'],
    [{ size: '66x64' }, 'width'],
  ];
  for (const [fields, param] of refusals) {
    assert.equal(
      (await postRefused('generations', { model: 'klein', prompt: 'x', size: '64x64', num_inference_steps: 1, ...fields }, param)).param,
      param,
    );
  }
});

test('edits are reference-image generations (the library pixels, strength has no effect); no inpainting', async () => {
  const files = await editInputs();
  const fields = { model: 'klein', prompt: 'a watercolor fox', num_inference_steps: '3', rng_seed: '3' };
  const { data, info } = await postImage('edits', imageForm({ ...fields, strength: '0.3' }, { image: files.image }));
  assert.deepEqual([info.width, info.height], [80, 72]);
  await assertLibraryPixels(
    data,
    DIR,
    (model) => model.image2image('a watercolor fox', fs.readFileSync(files.image), { numInferenceSteps: 3, seed: 3 }),
    'the server returns the library pixels, strength 0.3 or not',
  );

  const { info: sizedInfo } = await postImage('edits', imageForm({ ...fields, size: '64x64' }, { image: files.image }));
  assert.deepEqual([sizedInfo.width, sizedInfo.height], [64, 64]);

  const refused = await postRefused(
    'edits',
    imageForm({ model: 'klein', prompt: 'x', num_inference_steps: '1' }, { image: files.image, mask: files.boxMask }),
  );
  assert.match(refused.message, /text-to-image, image-to-image only|inpaint/i);
});
