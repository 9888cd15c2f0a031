'use strict';
// The same call on the same loaded model gives the same pixels, every time: five calls per feature (and two
// calls at once, five times, for concurrency), each compared byte for byte with the first.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { compareBytes, pixels } = require('./helpers/oracle');
const { editInputs } = require('./helpers/images');

const REPEATS = 5;
const PROMPT = 'a photo of a cat';
const lora = (name) => path.join(fixture('loras'), `${name}.safetensors`);

/** Per feature: the model (folder and load options) and one call on it. Models with equal loads are shared. */
function features(files) {
  const image = fs.readFileSync(files.image);
  const boxMask = fs.readFileSync(files.boxMask);
  const sdxlAdapters = { adapters: { a: lora('sdxl-kohya-a'), b: lora('sdxl-kohya-b') }, adapterPresets: { blend: { a: 0.7, b: 0.4 } } };
  return [
    { name: 'text-to-image (SD 1.5)', model: ['sd15'], call: (m) => m.text2image(PROMPT, { numInferenceSteps: 3 }) },
    {
      name: 'text-to-image, 2 images (SDXL)',
      model: ['sdxl'],
      call: (m) => m.text2image(PROMPT, { numInferenceSteps: 2, numImagesPerPrompt: 2 }),
    },
    {
      name: 'image-to-image (SD 1.5)',
      model: ['sd15'],
      call: (m) => m.image2image(PROMPT, image, { numInferenceSteps: 4, strength: 0.7 }),
    },
    { name: 'inpainting (SD 1.5)', model: ['sd15'], call: (m) => m.inpaint(PROMPT, image, boxMask, { numInferenceSteps: 3 }) },
    {
      name: 'inpainting (dedicated inpainting model)',
      model: ['sd-inpaint'],
      call: (m) => m.inpaint(PROMPT, image, boxMask, { numInferenceSteps: 3 }),
    },
    {
      name: 'LoRA a@0.5 (SD 1.5, linear and 1x1 convolutions)',
      model: ['sd15', { adapters: { a: lora('sd15-kohya-a') } }],
      call: (m) => m.text2image(PROMPT, { numInferenceSteps: 3, adapters: { a: 0.5 } }),
    },
    {
      name: 'LoRA a@0.5 (SDXL)',
      model: ['sdxl', sdxlAdapters],
      call: (m) => m.text2image(PROMPT, { numInferenceSteps: 3, adapters: { a: 0.5 } }),
    },
    {
      name: 'LoRA preset (SDXL)',
      model: ['sdxl', sdxlAdapters],
      call: (m) => m.text2image(PROMPT, { numInferenceSteps: 3, adapters: 'blend' }),
    },
    {
      name: 'LoRA image-to-image (SDXL)',
      model: ['sdxl', sdxlAdapters],
      call: (m) => m.image2image(PROMPT, image, { numInferenceSteps: 3, strength: 0.8, adapters: { b: 1 } }),
    },
    {
      name: 'LoRA (FLUX, CLIP + transformer)',
      model: ['flux-dev', { adapters: { a: lora('flux-dev-diffusers-a') } }],
      call: (m) => m.text2image(PROMPT, { numInferenceSteps: 3, width: 64, height: 64, adapters: { a: 0.8 } }),
    },
    {
      name: 'static shapes (SD 1.5, 64x48)',
      model: ['sd15', { reshape: { width: 64, height: 48 } }],
      call: (m) => m.text2image(PROMPT, { numInferenceSteps: 3 }),
    },
    {
      name: 'TaylorSeer (FLUX schnell, 12 steps)',
      model: ['flux-schnell'],
      call: (m) => m.text2image(PROMPT, { numInferenceSteps: 12, width: 64, height: 64 }),
    },
    { name: 'SD3 with T5', model: ['sd3'], call: (m) => m.text2image(PROMPT, { numInferenceSteps: 3 }) },
  ];
}

test(`the same call gives the same pixels ${REPEATS} times in a row, for every feature`, async () => {
  const files = await editInputs();
  const loaded = new Map();
  const rows = [];
  for (const feature of features(files)) {
    const key = JSON.stringify(feature.model);
    if (!loaded.has(key)) loaded.set(key, await DiffusionModel.load(fixture(feature.model[0]), feature.model[1]));
    const model = loaded.get(key);
    const first = pixels(await feature.call(model));
    let worst = 0;
    for (let k = 1; k < REPEATS; k += 1) worst = Math.max(worst, compareBytes(pixels(await feature.call(model)), first).maxDiff);
    rows.push({ name: feature.name, worst });
  }
  for (const model of loaded.values()) model.dispose();
  console.log(['| feature | max |diff| to the first call |', '|---|---|', ...rows.map((r) => `| ${r.name} | ${r.worst} |`)].join('\n'));
  assert.deepEqual(
    rows.filter((r) => r.worst !== 0),
    [],
  );
});

test(`two calls at once on one model (maxConcurrency 2) give the pixels of one call alone, ${REPEATS} times`, async () => {
  const model = await DiffusionModel.load(fixture('sdxl'), { maxConcurrency: 2, adapters: { a: lora('sdxl-kohya-a') } });
  const plain = () => model.text2image(PROMPT, { numInferenceSteps: 3 });
  const withA = () => model.text2image(PROMPT, { numInferenceSteps: 3, adapters: { a: 0.6 } });
  const alone = [pixels(await plain()), pixels(await withA())];
  assert.ok(compareBytes(alone[0], alone[1]).maxDiff > 0, 'the adapter changes the image');
  for (let k = 0; k < REPEATS; k += 1) {
    // Two infer requests at once; the adapter choice alternates between them, so states move between requests.
    const calls = k % 2 === 0 ? [plain(), withA()] : [withA(), plain()];
    const results = (await Promise.all(calls)).map(pixels);
    const expected = k % 2 === 0 ? alone : [alone[1], alone[0]];
    assert.equal(compareBytes(results[0], expected[0]).maxDiff, 0, `round ${k}: first call`);
    assert.equal(compareBytes(results[1], expected[1]).maxDiff, 0, `round ${k}: second call`);
  }
  model.dispose();
});
