'use strict';
// FLUX.2 klein (Flux2KleinPipeline) pixels against the pinned openvino_genai: text-to-image and image-to-image (which
// is reference-image conditioning there, strength has no effect; the oracle has no FLUX.2 inpainting), the
// distilled fixture and a non-distilled copy with classifier-free guidance, and the refusals. Every case must be exact.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const sharp = require('sharp');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { parity, assertAllExact } = require('./helpers/parity');
const { LONG_PROMPT, withJsonPatch, withSchedulerPatch, textToImageCase, imageToImageCase } = require('./helpers/cases');
const { assertFamily, planOf, refusesParam, refusesTaylorSeerAndOtherSchedulers, previewedCall } = require('./helpers/model-checks');
const { editInputs, writePng, gradient } = require('./helpers/images');
const { compareStyle } = require('./helpers/lora');

const PROMPT = 'a red cat';
// LONG_PROMPT: about 150 tokens in the chat format, so maxSequenceLength 64 cuts it (and the chat format's end).
const DIR = fixture('flux2-klein');

const t2i = textToImageCase({ width: 64, height: 64 });
const i2i = imageToImageCase;

function distilledCases(files) {
  return [
    t2i('steps=1', { numInferenceSteps: 1 }),
    t2i('steps=4', { numInferenceSteps: 4 }),
    t2i('steps=9 128x96 seed 3', { numInferenceSteps: 9, width: 128, height: 96, seed: 3 }),
    t2i('steps=4 seed 7', { numInferenceSteps: 4, seed: 7 }),
    t2i('48x80 steps=4 seed 7', { numInferenceSteps: 4, width: 48, height: 80, seed: 7 }),
    t2i('68x68 (odd packed grid)', { numInferenceSteps: 2, width: 68, height: 68 }),
    t2i('2 images steps=4', { numInferenceSteps: 4, numImagesPerPrompt: 2 }),
    t2i('3 images 32x48', { numInferenceSteps: 2, numImagesPerPrompt: 3, width: 32, height: 48 }),
    // Distilled: the guidance scale changes nothing.
    t2i('guidance 7 (distilled: no effect)', { numInferenceSteps: 3, guidanceScale: 7 }),
    t2i('empty prompt', { numInferenceSteps: 2 }, { prompt: '' }),
    t2i('long prompt', { numInferenceSteps: 3 }, { prompt: LONG_PROMPT }),
    t2i('long prompt maxSequenceLength=64', { numInferenceSteps: 2, maxSequenceLength: 64 }, { prompt: LONG_PROMPT }),
    t2i('maxSequenceLength=8', { numInferenceSteps: 2, maxSequenceLength: 8 }),
    t2i('maxSequenceLength=1', { numInferenceSteps: 2, maxSequenceLength: 1 }),
    t2i('maxSequenceLength=0 (no text tokens)', { numInferenceSteps: 2, maxSequenceLength: 0 }),
    // Refused by both.
    t2i('maxSequenceLength=513', { numInferenceSteps: 1, maxSequenceLength: 513 }),
    t2i('width 66 (not a multiple of 4)', { numInferenceSteps: 1, width: 66 }),
    t2i('negative prompt', { numInferenceSteps: 1, negativePrompt: 'blurry' }),
    t2i('negative prompt with guidance', { numInferenceSteps: 1, guidanceScale: 4, negativePrompt: '' }),
    t2i('prompt 2', { numInferenceSteps: 1, prompt2: 'x' }),
    t2i('prompt 3', { numInferenceSteps: 1, prompt3: 'x' }),
    // Image-to-image: the input, resized to the output size, conditions every step.
    i2i('i2i at the input size (80x72)', files.image, { numInferenceSteps: 4 }),
    i2i('i2i 64x64 from 80x72', files.image, { numInferenceSteps: 4, width: 64, height: 64 }),
    i2i('i2i 128x96 seed 5', files.image, { numInferenceSteps: 4, width: 128, height: 96, seed: 5 }),
    i2i('i2i strength 0.3 (no effect)', files.image, { numInferenceSteps: 3, strength: 0.3 }),
    i2i('i2i 2 images', files.image, { numInferenceSteps: 3, numImagesPerPrompt: 2 }),
    i2i('i2i 66x70 input (floored to 64x68)', files.odd, { numInferenceSteps: 3 }),
    i2i('i2i steps=9 maxSequenceLength=16', files.image, { numInferenceSteps: 9, maxSequenceLength: 16 }),
    {
      name: 'inpaint (no FLUX.2 klein inpainting)',
      task: 'inpainting',
      image: files.image,
      mask: files.boxMask,
      options: { numInferenceSteps: 2 },
    },
  ];
}

// model_index.json is_distilled false: classifier-free guidance with the empty prompt above guidance 1.
function guidedCases(files) {
  return [
    t2i('guidance 4 (default) steps=3', { numInferenceSteps: 3 }),
    t2i('guidance 1 (off)', { numInferenceSteps: 3, guidanceScale: 1 }),
    t2i('guidance 1.01', { numInferenceSteps: 2, guidanceScale: 1.01 }),
    t2i('2 images 48x32 guidance 2 seed 9', {
      numInferenceSteps: 3,
      guidanceScale: 2,
      numImagesPerPrompt: 2,
      width: 48,
      height: 32,
      seed: 9,
    }),
    t2i('maxSequenceLength=16 guidance 3', { numInferenceSteps: 2, guidanceScale: 3, maxSequenceLength: 16 }),
    i2i('i2i guidance 3', files.image, { numInferenceSteps: 3, guidanceScale: 3 }),
  ];
}

// Scheduler configs the exporter does not write: the static shift, and FLUX.1's linear mu.
const scheduleCases = () => [t2i('steps=3 80x48', { numInferenceSteps: 3, width: 80, height: 48 })];

async function inputs() {
  return { ...(await editInputs()), odd: await writePng('klein-odd', gradient(66, 70), 66, 70, 3) };
}

test('FLUX.2 klein matches openvino_genai pixel for pixel', async () => {
  const files = await inputs();
  const rows = [];
  await parity(rows, { name: 'flux2-klein', dir: DIR }, distilledCases(files), { prompt: PROMPT });
  await parity(
    rows,
    { name: 'klein not distilled', dir: withJsonPatch(DIR, 'model_index.json', { is_distilled: false }) },
    guidedCases(files),
    {
      prompt: PROMPT,
    },
  );
  for (const [name, patch] of [
    ['klein static shift', { use_dynamic_shifting: false }],
    ['klein linear mu', { time_shift_type: 'linear' }],
  ])
    await parity(rows, { name, dir: withSchedulerPatch(DIR, patch) }, scheduleCases(), { prompt: PROMPT });
  assertAllExact('FLUX.2 klein parity (ours vs openvino_genai)', rows);
});

test('FLUX.2 klein: family, tasks, defaults and the refusals it adds', async () => {
  const model = await DiffusionModel.load(DIR);
  assertFamily(model, { className: 'Flux2KleinPipeline', family: 'FLUX.2 klein', tasks: ['image2image', 'text2image'] });
  // The oracle's defaults: 128 x the VAE scale (2 here), 50 steps (seen by admit, then refused so nothing runs).
  assert.deepEqual(await planOf((o) => model.text2image(PROMPT, o)), { width: 256, height: 256, steps: 50 });
  const files = await inputs();
  // Image-to-image: the input's size floored to a multiple of 4, or the size asked for.
  const odd = fs.readFileSync(files.odd);
  assert.deepEqual(await planOf((o) => model.image2image(PROMPT, odd, o)), { width: 64, height: 68, steps: 50 });
  assert.deepEqual(await planOf((o) => model.image2image(PROMPT, odd, { ...o, width: 32, height: 40 })), {
    width: 32,
    height: 40,
    steps: 50,
  });

  const small = { width: 64, height: 64, numInferenceSteps: 1 };
  await refusesParam(model.text2image(PROMPT, { ...small, negativePrompt2: 'x' }), 'negativePrompt2', /no negative prompt/);
  await refusesTaylorSeerAndOtherSchedulers(model, PROMPT, small);
  await refusesParam(model.text2image(PROMPT, { ...small, maxSequenceLength: 600 }), 'maxSequenceLength', /between 0 and 512/);
  const tiny = await sharp(Buffer.alloc(3 * 3 * 3, 128), { raw: { width: 3, height: 3, channels: 3 } })
    .png()
    .toBuffer();
  await refusesParam(model.image2image(PROMPT, tiny, { numInferenceSteps: 1 }), 'image', /smaller than 4 pixels/);
  await assert.rejects(
    model.inpaint(PROMPT, fs.readFileSync(files.image), fs.readFileSync(files.boxMask), { numInferenceSteps: 1 }),
    (e) => e.code === 'ERR_INVALID_ARGUMENT' && /image2image|text2image|inpaint/.test(e.message),
  );

  const { result } = await previewedCall(model, PROMPT, { ...small, numInferenceSteps: 3 });
  assert.deepEqual(Object.keys(result.metrics.textEncoderMs), ['text_encoder']);
  // Fast previews: the latent-to-RGB map fitted from one decode of the callback's latent.
  await previewedCall(model, PROMPT, { ...small, numInferenceSteps: 3, previewMode: 'fast' });
  model.dispose();

  // A folder without the VAE's batch-norm statistics (the exporter writes them to vae_decoder/config.json).
  const noStatistics = withJsonPatch(DIR, 'vae_decoder/config.json', { bn_running_mean_data: [] });
  await assert.rejects(
    DiffusionModel.load(noStatistics),
    (e) => e.code === 'ERR_UNSUPPORTED_MODEL' && /bn_running_mean_data/.test(e.message),
  );
});

test('FLUX.2 klein LoRA (diffusers transformer keys, as the oracle: the transformer only) matches openvino_genai', async () => {
  const { rows, report } = await compareStyle('flux2-klein', 'diffusers');
  for (const r of report) {
    assert.deepEqual(r.unmatchedKeys, [], `${r.name}: every key finds its layer`);
    assert.ok(r.matchedLayers > 0);
  }
  assertAllExact('FLUX.2 klein LoRA parity (ours vs openvino_genai)', rows);
  console.log(
    `adapter effect (mean |oracle with - oracle base|): ${rows.map((r) => `${r.name} ${r.adapterEffect.toFixed(2)}`).join('; ')}`,
  );
  // The adapters really change the image, so the equality above is not trivial.
  assert.ok(rows.filter((r) => !r.name.endsWith('none after adapters')).every((r) => r.adapterEffect > 0.2));
});
