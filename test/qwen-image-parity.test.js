'use strict';
// Qwen-Image (QwenImagePipeline) pixels against the pinned openvino_genai: text-to-image with and without true
// classifier-free guidance (a negative prompt and guidance above 1), max_sequence_length, scheduler configs the
// exporter does not write, image-to-image (SDEdit with strength, at the size asked for or the default 256x256) and
// the refusals both make (the oracle has no Qwen-Image inpainting). Every case must be exact.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { parity, assertAllExact } = require('./helpers/parity');
const { LONG_PROMPT, withSchedulerPatch, textToImageCase, imageToImageCase } = require('./helpers/cases');
const { assertFamily, planOf, refusesParam, refusesTaylorSeerAndOtherSchedulers, previewedCall } = require('./helpers/model-checks');
const { editInputs } = require('./helpers/images');
const { compareStyle } = require('./helpers/lora');
const { t2i: reshapeT2i, i2i: reshapeI2i, modelRows, assertStaticRefusals } = require('./helpers/reshape');

const PROMPT = 'a red cat';
// LONG_PROMPT: about 130 tokens after the template's 34-token prefix, so maxSequenceLength 64 cuts it (and the template's end).
const DIR = fixture('qwen-image');

const t2i = textToImageCase({ width: 64, height: 64 });
const i2i = imageToImageCase;

function cases(files) {
  return [
    // One step: the shift_terminal stretch divides 0 by 0, both give NaN latents and a black image.
    t2i('steps=1 (NaN, black)', { numInferenceSteps: 1 }),
    t2i('steps=3', { numInferenceSteps: 3 }),
    t2i('steps=9 128x96 seed 3', { numInferenceSteps: 9, width: 128, height: 96, seed: 3 }),
    t2i('48x80 steps=4 seed 7', { numInferenceSteps: 4, width: 48, height: 80, seed: 7 }),
    t2i('68x68 (odd packed grid)', { numInferenceSteps: 2, width: 68, height: 68 }),
    t2i('2 images steps=3', { numInferenceSteps: 3, numImagesPerPrompt: 2 }),
    t2i('3 images 32x48', { numInferenceSteps: 2, numImagesPerPrompt: 3, width: 32, height: 48 }),
    // Without a negative prompt the guidance scale changes nothing.
    t2i('guidance 7, no negative prompt (no effect)', { numInferenceSteps: 3, guidanceScale: 7 }),
    t2i('empty prompt', { numInferenceSteps: 2 }, { prompt: '' }),
    t2i('long prompt', { numInferenceSteps: 3 }, { prompt: LONG_PROMPT }),
    t2i('long prompt maxSequenceLength=64', { numInferenceSteps: 2, maxSequenceLength: 64 }, { prompt: LONG_PROMPT }),
    t2i('maxSequenceLength=8', { numInferenceSteps: 3, maxSequenceLength: 8 }),
    t2i('maxSequenceLength=1', { numInferenceSteps: 2, maxSequenceLength: 1 }),
    t2i('maxSequenceLength=1024', { numInferenceSteps: 2, maxSequenceLength: 1024 }),
    // True CFG with the per-token norm rescale.
    t2i('negative prompt, guidance 4 (default)', { numInferenceSteps: 3, negativePrompt: 'blurry' }),
    t2i('empty negative prompt, guidance 2', { numInferenceSteps: 3, guidanceScale: 2, negativePrompt: '' }),
    t2i('2 images 48x32 negative prompt guidance 3 seed 9', {
      numInferenceSteps: 3,
      guidanceScale: 3,
      negativePrompt: 'blurry',
      numImagesPerPrompt: 2,
      width: 48,
      height: 32,
      seed: 9,
    }),
    t2i('negative prompt maxSequenceLength=16 guidance 3', {
      numInferenceSteps: 2,
      guidanceScale: 3,
      negativePrompt: 'blurry',
      maxSequenceLength: 16,
    }),
    // Refused by both.
    t2i('maxSequenceLength=0', { numInferenceSteps: 1, maxSequenceLength: 0 }),
    t2i('maxSequenceLength=1025', { numInferenceSteps: 1, maxSequenceLength: 1025 }),
    t2i('width 66 (not a multiple of 4)', { numInferenceSteps: 1, width: 66 }),
    t2i('negative prompt, guidance 1', { numInferenceSteps: 1, guidanceScale: 1, negativePrompt: 'blurry' }),
    t2i('prompt 2', { numInferenceSteps: 1, prompt2: 'x' }),
    t2i('prompt 3', { numInferenceSteps: 1, prompt3: 'x' }),
    t2i('negative prompt 2', { numInferenceSteps: 1, guidanceScale: 4, negativePrompt: 'y', negativePrompt2: 'x' }),
    // Image-to-image: SDEdit, the input resized to the output size (default 256x256, whatever the input's size).
    i2i('i2i 64x64 strength 0.75', files.image, { numInferenceSteps: 4, width: 64, height: 64, strength: 0.75 }),
    i2i('i2i default size and strength (256x256, 0.6)', files.image, { numInferenceSteps: 4 }),
    i2i('i2i 128x96 strength 0.6 seed 5', files.image, { numInferenceSteps: 5, width: 128, height: 96, seed: 5 }),
    i2i('i2i strength 1', files.image, { numInferenceSteps: 3, width: 64, height: 64, strength: 1 }),
    i2i('i2i strength 0.1 (one step)', files.image, { numInferenceSteps: 4, width: 64, height: 64, strength: 0.1 }),
    i2i('i2i 48x80 negative prompt guidance 3', files.image, {
      numInferenceSteps: 4,
      width: 48,
      height: 80,
      strength: 0.7,
      negativePrompt: 'blurry',
      guidanceScale: 3,
    }),
    i2i('i2i maxSequenceLength=16', files.image, { numInferenceSteps: 3, width: 64, height: 64, maxSequenceLength: 16 }),
    i2i('i2i strength 0 (no step left)', files.image, { numInferenceSteps: 4, width: 64, height: 64, strength: 0 }),
    i2i('i2i 2 images (the oracle fails)', files.image, { numInferenceSteps: 2, width: 64, height: 64, numImagesPerPrompt: 2 }),
    {
      name: 'inpaint (no Qwen-Image inpainting)',
      task: 'inpainting',
      image: files.image,
      mask: files.boxMask,
      options: { numInferenceSteps: 2 },
    },
  ];
}

// Scheduler configs the exporter does not write (time_shift_type is ignored by the oracle: always FLUX.1's linear mu).
const scheduleCases = () => [t2i('steps=4 48x80 seed 7', { numInferenceSteps: 4, width: 48, height: 80, seed: 7 })];

test('Qwen-Image matches openvino_genai pixel for pixel', async () => {
  const files = await editInputs();
  const rows = [];
  await parity(rows, { name: 'qwen-image', dir: DIR }, cases(files), { prompt: PROMPT });
  for (const [name, patch] of [
    ['qwen no shift_terminal', { shift_terminal: null }],
    ['qwen static shift 3', { use_dynamic_shifting: false, shift: 3.0 }],
    ['qwen base/max shift 0.1/3', { base_shift: 0.1, max_shift: 3.0 }],
    ['qwen time_shift_type linear', { time_shift_type: 'linear' }],
  ])
    await parity(rows, { name, dir: withSchedulerPatch(DIR, patch) }, scheduleCases(), { prompt: PROMPT });
  assertAllExact('Qwen-Image parity (ours vs openvino_genai)', rows);
});

test('Qwen-Image: family, tasks, defaults and the refusals it adds', async () => {
  const model = await DiffusionModel.load(DIR);
  assertFamily(model, { className: 'QwenImagePipeline', family: 'Qwen-Image', tasks: ['image2image', 'text2image'] });
  // The oracle's defaults: 128 x the VAE scale (2 here), 50 steps (seen by admit, then refused so nothing runs).
  assert.deepEqual(await planOf((o) => model.text2image(PROMPT, o)), { width: 256, height: 256, steps: 50 });
  const files = await editInputs();
  // Image-to-image: the default size, not the 80x72 input's.
  const edit = await planOf((o) => model.image2image(PROMPT, fs.readFileSync(files.image), o));
  assert.deepEqual([edit.width, edit.height], [256, 256]);

  const small = { width: 64, height: 64, numInferenceSteps: 1 };
  await refusesTaylorSeerAndOtherSchedulers(model, PROMPT, small);
  await refusesParam(model.text2image(PROMPT, { ...small, maxSequenceLength: 1025 }), 'maxSequenceLength', /between 1 and 1024/);
  await refusesParam(
    model.image2image(PROMPT, fs.readFileSync(files.image), { ...small, numImagesPerPrompt: 2 }),
    'numImagesPerPrompt',
    /one image per call/,
  );
  await assert.rejects(
    model.inpaint(PROMPT, fs.readFileSync(files.image), fs.readFileSync(files.boxMask), { numInferenceSteps: 1 }),
    (e) => e.code === 'ERR_INVALID_ARGUMENT' && /inpaint/.test(e.message),
  );

  const { result } = await previewedCall(model, PROMPT, { ...small, numInferenceSteps: 3 });
  assert.deepEqual(Object.keys(result.metrics.textEncoderMs), ['text_encoder']);
  // Fast previews: the latent-to-RGB map fitted from one decode of the callback's latent.
  await previewedCall(model, PROMPT, { ...small, numInferenceSteps: 3, previewMode: 'fast' });
  model.dispose();
});

test('Qwen-Image LoRA (diffusers transformer keys, as the oracle: the transformer only) matches openvino_genai', async () => {
  const { rows, report } = await compareStyle('qwen-image', 'diffusers');
  // The exporter drops the last block's text stream (its output is unused): those keys fit no layer, in the oracle too.
  const lastTextStream = /^transformer\.transformer_blocks\.1\.(attn\.to_add_out|txt_mlp\.net\.(0\.proj|2))$/;
  for (const r of report) {
    assert.ok(r.matchedLayers > 0);
    assert.deepEqual(
      r.unmatchedKeys.filter((k) => !lastTextStream.test(k)),
      [],
      `${r.name}: every other key finds its layer`,
    );
  }
  assertAllExact('Qwen-Image LoRA parity (ours vs openvino_genai)', rows);
  console.log(
    `adapter effect (mean |oracle with - oracle base|): ${rows.map((r) => `${r.name} ${r.adapterEffect.toFixed(2)}`).join('; ')}`,
  );
  // The adapters really change the image, so the equality above is not trivial.
  assert.ok(rows.filter((r) => !r.name.endsWith('none after adapters')).every((r) => r.adapterEffect > 0.2));
});

// Static shapes, as the oracle's reshape(): the text encoder at [2, 546] ids when the reshape's guidance is above 1
// (negative prompt and prompt in one batch; without a negative prompt the second row goes unused), else [1, 546]; the
// transformer at N rows, once per guidance branch, with 512 text tokens; the VAE at N images.
const STATIC_MODEL = {
  name: 'qwen-image',
  shapes: [
    {
      shape: { numImagesPerPrompt: 1, guidanceScale: 4 },
      calls: [
        reshapeT2i('no negative prompt (unguided)'),
        reshapeT2i('negative prompt', { negativePrompt: 'blurry' }),
        reshapeT2i('negative prompt guidance 7', { negativePrompt: ' ', guidanceScale: 7 }),
        reshapeI2i('strength=0.6'),
        reshapeI2i('strength=0.3'),
      ],
    },
    { shape: { numImagesPerPrompt: 2, guidanceScale: 4 }, calls: [reshapeT2i('negative prompt', { negativePrompt: 'blurry' })] },
    { shape: { numImagesPerPrompt: 1, guidanceScale: 1 }, calls: [reshapeT2i('guidance 1'), reshapeI2i('strength=0.6')] },
  ],
};

test('Qwen-Image static shapes (reshape) match openvino_genai reshape() + compile() pixel for pixel', async () => {
  const rows = await modelRows(STATIC_MODEL, await editInputs());
  assertAllExact('Qwen-Image static shapes (ours reshaped vs openvino_genai reshaped)', rows);
});

test('Qwen-Image static shapes refuse what the oracle cannot run: other guidance, sizes, counts and sequence lengths', async () => {
  await assertStaticRefusals(DIR, PROMPT, { guided: 4, threshold: 1, guidedCall: { guidanceScale: 7, negativePrompt: ' ' } });
  // Image-to-image makes one image per call (the oracle compiles its VAE encoder for N images and fails).
  const two = await DiffusionModel.load(DIR, { reshape: { width: 64, height: 48, numImagesPerPrompt: 2, guidanceScale: 4 } });
  await assert.rejects(two.image2image(PROMPT, fs.readFileSync((await editInputs()).image), { numInferenceSteps: 1 }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /one image per call/,
  });
  two.dispose();
});
