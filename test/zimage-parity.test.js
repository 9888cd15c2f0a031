'use strict';
// Z-Image (ZImagePipeline) pixels against the pinned openvino_genai: text-to-image and image-to-image (the oracle has
// no Z-Image inpainting), with and without classifier-free guidance, and the refusals. Every case must be exact.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { parity, assertAllExact } = require('./helpers/parity');
const { editInputs } = require('./helpers/images');
const { LONG_PROMPT, textToImageCase, imageToImageCase } = require('./helpers/cases');
const { runOracle } = require('./helpers/oracle');
const { lora } = require('./helpers/lora');
const { t2i: reshapeT2i, i2i: reshapeI2i, modelRows, assertStaticRefusals } = require('./helpers/reshape');
const { assertFamily, planOf, refusesParam, refusesTaylorSeerAndOtherSchedulers, previewedCall } = require('./helpers/model-checks');

const PROMPT = 'a photo of a cat';
// LONG_PROMPT: about 260 tokens in the chat format, so maxSequenceLength 64 cuts it (and the chat format's end).
const DIR = fixture('z-image');

const t2i = textToImageCase({ width: 64, height: 64 });
// Image-to-image runs at the input's size (80x72 here), as the oracle, which ignores width and height there.
const i2i = imageToImageCase;

function cases(files) {
  return [
    // Z-Image-Turbo's way: no guidance.
    t2i('steps=1 guidance 0', { numInferenceSteps: 1, guidanceScale: 0 }),
    t2i('steps=4 guidance 0', { numInferenceSteps: 4, guidanceScale: 0 }),
    t2i('steps=9 guidance 0', { numInferenceSteps: 9, guidanceScale: 0 }),
    t2i('steps=4 guidance 0 seed 7', { numInferenceSteps: 4, guidanceScale: 0, seed: 7 }),
    t2i('48x80 steps=4 guidance 0 seed 7', { numInferenceSteps: 4, guidanceScale: 0, width: 48, height: 80, seed: 7 }),
    t2i('2 images steps=4 guidance 0', { numInferenceSteps: 4, guidanceScale: 0, numImagesPerPrompt: 2 }),
    // The default guidance (5): classifier-free guidance with the empty negative prompt.
    t2i('steps=4 default guidance', { numInferenceSteps: 4 }),
    t2i('guidance 0.5 (guidance is on above 0)', { numInferenceSteps: 2, guidanceScale: 0.5 }),
    t2i('guidance 3 + negative prompt', { numInferenceSteps: 4, guidanceScale: 3, negativePrompt: 'blurry, low quality' }),
    t2i('2 images 80x48 guidance 2', { numInferenceSteps: 2, guidanceScale: 2, numImagesPerPrompt: 2, width: 80, height: 48 }),
    t2i('long prompt', { numInferenceSteps: 4, guidanceScale: 0 }, { prompt: LONG_PROMPT }),
    t2i('long prompt maxSequenceLength=64', { numInferenceSteps: 2, guidanceScale: 0, maxSequenceLength: 64 }, { prompt: LONG_PROMPT }),
    t2i('maxSequenceLength=1024', { numInferenceSteps: 2, maxSequenceLength: 1024 }),
    // Refused by both.
    t2i('negative prompt without guidance', { numInferenceSteps: 1, guidanceScale: 0, negativePrompt: 'blurry' }),
    t2i('width 66 (latent not even)', { numInferenceSteps: 1, guidanceScale: 0, width: 66 }),
    t2i('strength 0.5', { numInferenceSteps: 1, strength: 0.5 }),
    i2i('i2i default strength (0.6) guidance 0', files.image, { numInferenceSteps: 4, guidanceScale: 0 }),
    i2i('i2i strength=0.9 steps=9 guidance 2', files.image, { numInferenceSteps: 9, strength: 0.9, guidanceScale: 2 }),
    i2i('i2i 2 images strength=0.5', files.image, { numInferenceSteps: 4, strength: 0.5, guidanceScale: 0, numImagesPerPrompt: 2 }),
    i2i('i2i strength=0 (refused)', files.image, { numInferenceSteps: 2, strength: 0 }),
    i2i('i2i strength=1', files.image, { numInferenceSteps: 3, strength: 1, guidanceScale: 0 }),
    {
      name: 'inpaint (no Z-Image inpainting)',
      task: 'inpainting',
      image: files.image,
      mask: files.boxMask,
      options: { numInferenceSteps: 2 },
    },
  ];
}

test('Z-Image matches openvino_genai pixel for pixel', async () => {
  const files = await editInputs();
  const rows = [];
  await parity(rows, { name: 'z-image', dir: DIR }, cases(files), { prompt: PROMPT });
  assertAllExact('Z-Image parity (ours vs openvino_genai)', rows);
});

test('Z-Image: family, tasks, defaults and the refusals it adds', async () => {
  const model = await DiffusionModel.load(DIR);
  assertFamily(model, { className: 'ZImagePipeline', family: 'Z-Image', tasks: ['image2image', 'text2image'] });
  // The oracle's defaults: 1024x1024 whatever the VAE, 50 steps (seen by admit, then refused so nothing runs).
  assert.deepEqual(await planOf((o) => model.text2image(PROMPT, o)), { width: 1024, height: 1024, steps: 50 });
  const small = { width: 64, height: 64, numInferenceSteps: 1 };
  await refusesParam(model.text2image(PROMPT, { ...small, prompt2: 'x' }), 'prompt2', /one text encoder/);
  await refusesParam(model.text2image(PROMPT, { ...small, guidanceScale: 2, negativePrompt2: 'x' }), 'negativePrompt2', /one text encoder/);
  await refusesTaylorSeerAndOtherSchedulers(model, PROMPT, small);
  await refusesParam(model.text2image(PROMPT, { ...small, maxSequenceLength: 0 }), 'maxSequenceLength', /at least 1/);
  await refusesParam(model.text2image(PROMPT, { ...small, guidanceScale: 1, negativePrompt: 'x' }), 'negativePrompt', /above 1/);
  const image = fs.readFileSync((await editInputs()).image);
  await refusesParam(model.image2image(PROMPT, image, { numInferenceSteps: 1, width: 64 }), 'width', /input image's size \(80x72\)/);
  const { result } = await previewedCall(model, PROMPT, { ...small, numInferenceSteps: 3, guidanceScale: 0 });
  assert.deepEqual(Object.keys(result.metrics.textEncoderMs), ['text_encoder']);
  model.dispose();
});

test('Z-Image LoRA: openvino_genai accepts adapters and applies none, so we refuse them at load', async () => {
  const adapter = lora('z-image-diffusers-a');
  const request = { pipeline: 'text2image', model: DIR, prompt: PROMPT, width: 64, height: 64, num_inference_steps: 2 };
  const [plain, withAdapter] = await runOracle([request, { ...request, adapters: [{ path: adapter, alpha: 1 }] }]);
  assert.ok(!plain.error && !withAdapter.error, plain.error || withAdapter.error);
  assert.deepEqual(withAdapter.data, plain.data, 'the oracle gives the same pixels with the adapter as without it');
  await assert.rejects(
    DiffusionModel.load(DIR, { adapters: { a: adapter } }),
    (e) => e.code === 'ERR_INVALID_ARGUMENT' && /LoRA adapters are not supported for Z-Image.*applies none/.test(e.message),
  );
});

// Static shapes, as the oracle's reshape(): the text encoder at [2, 512] ids with guidance (guidance above 0 at load:
// negative prompt and prompt in one batch), else [1, 512]; the transformer at N rows, once per guidance branch, with
// 512 caption positions. Image-to-image runs at the input's size (80x72), so its static shapes have that size.
const STATIC_MODELS = [
  {
    name: 'z-image',
    shapes: [
      {
        shape: { numImagesPerPrompt: 1, guidanceScale: 4 },
        calls: [
          reshapeT2i('steps=3'),
          reshapeT2i('negative prompt', { negativePrompt: 'blurry' }),
          reshapeT2i('guidance 1 (still guided)', { guidanceScale: 1 }),
        ],
      },
      { shape: { numImagesPerPrompt: 2, guidanceScale: 5 }, calls: [reshapeT2i('steps=3')] },
      { shape: { numImagesPerPrompt: 1, guidanceScale: 0 }, calls: [reshapeT2i('no guidance')] },
    ],
  },
  {
    name: 'z-image',
    size: [80, 72],
    shapes: [
      { shape: { numImagesPerPrompt: 1, guidanceScale: 4 }, calls: [reshapeI2i('strength=0.6'), reshapeI2i('strength=0.3')] },
      { shape: { numImagesPerPrompt: 1, guidanceScale: 0 }, calls: [reshapeI2i('strength=0.6')] },
    ],
  },
];

test('Z-Image static shapes (reshape) match openvino_genai reshape() + compile() pixel for pixel', async () => {
  const files = await editInputs();
  const rows = [];
  for (const entry of STATIC_MODELS) rows.push(...(await modelRows(entry, files)));
  assertAllExact('Z-Image static shapes (ours reshaped vs openvino_genai reshaped)', rows);
});

test('Z-Image static shapes refuse what the oracle cannot run: other guidance, sizes, counts and sequence lengths', async () => {
  await assertStaticRefusals(DIR, PROMPT, { guided: 4, threshold: 0, guidedCall: { guidanceScale: 1 } });
});
