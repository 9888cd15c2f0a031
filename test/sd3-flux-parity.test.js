'use strict';
// Stable Diffusion 3 and FLUX pixels against the pinned openvino_genai: text-to-image, image-to-image,
// inpainting and FluxFill, TaylorSeer on and off (compared like with like), and the refusals.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');
const { printTable, unrepeatable } = require('./helpers/oracle');
const { parity: runParity } = require('./helpers/parity');
const { editInputs, writePng, mask } = require('./helpers/images');
const { textToImageCase } = require('./helpers/cases');

const PROMPT = 'a photo of a cat';
const LONG_PROMPT = Array(14).fill('a red cat sitting on the big green mat').join(' ');
// OVD_FLUX_FILL_FIXTURE points the FluxFill cases at another folder.
const FLUX_FILL = process.env.OVD_FLUX_FILL_FIXTURE || fixture('flux-fill');

/**
 * The oracle's T5 encoder keeps the input shape of the first call of a pipeline ([1 or 2 rows, max_sequence_length]);
 * a later call with another max_sequence_length or with CFG switched fails or reads stale rows. So cases are run in
 * one oracle process per T5 shape, each with a fresh pipeline. Two processes at a time.
 */
function t5Shape(model, c) {
  if (!model.t5) return 'none';
  const msl = c.options.maxSequenceLength ?? model.defaultMsl;
  const rows = model.cfg && (c.options.guidanceScale ?? 7) > 1 ? 2 : 1;
  return `${rows}x${msl}`;
}

const parity = (rows, model, cases) => runParity(rows, model, cases, { prompt: PROMPT, groupOf: (c) => t5Shape(model, c) });

const t2i = textToImageCase();

function sd3Cases(files, withT5) {
  const cases = [
    t2i('steps=4', { numInferenceSteps: 4 }),
    t2i('steps=12 (TaylorSeer default: on)', { numInferenceSteps: 12 }),
    t2i('steps=12 taylorseer=false', { numInferenceSteps: 12, taylorseer: false }),
    t2i('steps=12 taylorseer {2,3,-1}', {
      numInferenceSteps: 12,
      taylorseer: { cacheInterval: 2, disableCacheBeforeStep: 3, disableCacheAfterStep: -1 },
    }),
    t2i('80x48 steps=3', { numInferenceSteps: 3, width: 80, height: 48, seed: 7 }),
    t2i('guidance 1 (no CFG)', { numInferenceSteps: 3, guidanceScale: 1 }),
    t2i('2 images', { numInferenceSteps: 3, numImagesPerPrompt: 2 }),
    t2i('negative prompt', { numInferenceSteps: 3, negativePrompt: 'blurry dog', guidanceScale: 5 }),
    t2i('prompt_2', { numInferenceSteps: 2, prompt2: 'an oil painting' }),
    t2i('long prompt', { numInferenceSteps: 2 }, { prompt: LONG_PROMPT }),
    t2i('width 60 (not a multiple of 8)', { numInferenceSteps: 2, width: 60 }),
    t2i('strength 0.5', { numInferenceSteps: 2, strength: 0.5 }),
    { name: 'i2i strength=0.5', task: 'image2image', image: files.image, options: { numInferenceSteps: 6, strength: 0.5 } },
    {
      name: 'i2i strength=0.9 steps=12 taylorseer=true',
      task: 'image2image',
      image: files.image,
      options: { numInferenceSteps: 12, strength: 0.9, taylorseer: true },
    },
    { name: 'i2i 2 images', task: 'image2image', image: files.image, options: { numInferenceSteps: 2, numImagesPerPrompt: 2 } },
    { name: 'inpaint', task: 'inpainting', image: files.image, mask: files.boxMask, options: { numInferenceSteps: 5 } },
    {
      name: 'inpaint strength=1 soft mask',
      task: 'inpainting',
      image: files.image,
      mask: files.softMask,
      options: { numInferenceSteps: 4, strength: 1 },
    },
    {
      name: 'outpaint 80x72 canvas',
      task: 'inpainting',
      image: files.canvas,
      mask: files.border,
      options: { numInferenceSteps: 4, width: 80, height: 72 },
    },
  ];
  if (withT5) {
    cases.push(
      t2i('maxSequenceLength=20', { numInferenceSteps: 3, maxSequenceLength: 20 }),
      t2i('guidance 1 maxSequenceLength=77', { numInferenceSteps: 3, guidanceScale: 1, maxSequenceLength: 77 }),
      t2i('prompt_3 + negative_prompt_3', { numInferenceSteps: 3, prompt3: 'a bird', negativePrompt: 'blurry', negativePrompt3: 'red' }),
      t2i('maxSequenceLength=513', { numInferenceSteps: 2, maxSequenceLength: 513 }),
    );
  }
  return cases;
}

function fluxCases(files, dev) {
  const small = { width: 64, height: 64 };
  const cases = [
    t2i('steps=4 64x64', { numInferenceSteps: 4, ...small }),
    t2i('steps=12 64x48 (TaylorSeer default: on)', { numInferenceSteps: 12, width: 64, height: 48 }),
    t2i('steps=12 64x48 taylorseer=false', { numInferenceSteps: 12, width: 64, height: 48, taylorseer: false }),
    t2i('steps=9 taylorseer {3,2,-1}', {
      numInferenceSteps: 9,
      ...small,
      taylorseer: { cacheInterval: 3, disableCacheBeforeStep: 2, disableCacheAfterStep: -1 },
    }),
    t2i('default size (256x256) steps=2', { numInferenceSteps: 2 }),
    t2i('maxSequenceLength=30 + prompt_2', { numInferenceSteps: 3, ...small, maxSequenceLength: 30, prompt2: 'an oil painting' }),
    t2i('2 images 48x80', { numInferenceSteps: 3, width: 48, height: 80, numImagesPerPrompt: 2, seed: 11 }),
    t2i('long prompt', { numInferenceSteps: 2, ...small }, { prompt: LONG_PROMPT }),
    t2i('negative prompt', { numInferenceSteps: 2, ...small, negativePrompt: 'blurry' }),
    t2i('prompt_3', { numInferenceSteps: 2, ...small, prompt3: 'a bird' }),
    t2i('width 66 (latent not even)', { numInferenceSteps: 2, width: 66, height: 64 }),
    t2i('taylorseer cacheInterval=1', { numInferenceSteps: 12, ...small, taylorseer: { cacheInterval: 1 } }),
    { name: 'i2i strength=0.5', task: 'image2image', image: files.image, options: { numInferenceSteps: 6, strength: 0.5, ...small } },
    {
      name: 'i2i strength=0.8 80x72',
      task: 'image2image',
      image: files.image,
      options: { numInferenceSteps: 4, strength: 0.8, width: 80, height: 72 },
    },
    {
      name: 'inpaint',
      task: 'inpainting',
      image: files.image,
      mask: files.boxMask,
      options: { numInferenceSteps: 5, width: 80, height: 72 },
    },
    {
      name: 'inpaint strength=1 soft mask',
      task: 'inpainting',
      image: files.image,
      mask: files.softMask,
      options: { numInferenceSteps: 3, strength: 1, ...small },
    },
  ];
  if (dev) {
    cases.push(
      t2i('guidance 5', { numInferenceSteps: 3, ...small, guidanceScale: 5 }),
      t2i('maxSequenceLength=513', { numInferenceSteps: 2, ...small, maxSequenceLength: 513 }),
    );
  }
  return cases;
}

function fillCases(files) {
  return [
    {
      name: 'fill 64x64',
      task: 'inpainting',
      image: files.image,
      mask: files.boxMask,
      options: { numInferenceSteps: 4, width: 64, height: 64 },
    },
    {
      name: 'fill 2 images 80x48 guidance 4',
      task: 'inpainting',
      image: files.image,
      mask: files.softMask,
      options: { numInferenceSteps: 3, width: 80, height: 48, guidanceScale: 4, numImagesPerPrompt: 2 },
    },
    {
      name: 'fill strength=0.7',
      task: 'inpainting',
      image: files.canvas,
      mask: files.border,
      options: { numInferenceSteps: 4, width: 64, height: 64, strength: 0.7 },
    },
    {
      name: 'fill width 66 (not a multiple of 2 x VAE scale)',
      task: 'inpainting',
      image: files.image,
      mask: files.boxMask,
      options: { numInferenceSteps: 2, width: 66, height: 64 },
    },
  ];
}

test('SD3 and FLUX match openvino_genai pixel for pixel', async () => {
  const files = await editInputs();
  const rows = [];
  await parity(rows, { name: 'sd3', dir: fixture('sd3'), t5: true, cfg: true, defaultMsl: 256 }, sd3Cases(files, true));
  await parity(rows, { name: 'sd3-no-t5', dir: fixture('sd3-no-t5'), t5: false }, sd3Cases(files, false));
  await parity(
    rows,
    { name: 'flux-schnell', dir: fixture('flux-schnell'), t5: true, cfg: false, defaultMsl: 512 },
    fluxCases(files, false),
  );
  await parity(rows, { name: 'flux-dev', dir: fixture('flux-dev'), t5: true, cfg: false, defaultMsl: 512 }, fluxCases(files, true));
  if (fs.existsSync(FLUX_FILL)) {
    await parity(rows, { name: 'flux-fill', dir: FLUX_FILL, t5: true, cfg: false, defaultMsl: 512 }, fillCases(files));
  } else {
    rows.push({ name: `flux-fill: no fixture at ${FLUX_FILL} (skipped)`, maxDiff: 0, exact: 1 });
  }
  printTable('SD3 / FLUX parity (ours vs openvino_genai)', rows);
  assert.deepEqual(
    rows.filter((r) => r.maxDiff > 1),
    [],
    'cases over 1 (u8) apart',
  );
  assert.deepEqual(unrepeatable(rows), [], 'repeated calls gave different pixels');
});

test('SD3 and FLUX refuse parameters they would ignore, with clear messages', async () => {
  const files = await editInputs();
  const image = fs.readFileSync(files.image);
  const refuses = async (promise, pattern) => assert.rejects(promise, (e) => e.code === 'ERR_INVALID_ARGUMENT' && pattern.test(e.message));

  const noT5 = await DiffusionModel.load(fixture('sd3-no-t5'));
  await refuses(noT5.text2image(PROMPT, { numInferenceSteps: 1, prompt3: 'x' }), /no T5 encoder/);
  await refuses(noT5.text2image(PROMPT, { numInferenceSteps: 1, maxSequenceLength: 64 }), /no T5 encoder/);
  await refuses(noT5.text2image(PROMPT, { numInferenceSteps: 1, scheduler: 'EULER_DISCRETE' }), /FLOW_MATCH_EULER_DISCRETE/);
  await refuses(
    noT5.text2image(PROMPT, { numInferenceSteps: 1, taylorseer: { cacheInterval: 3, foo: 1 } }),
    /unknown taylorseer field 'foo'/,
  );
  await refuses(noT5.text2image(PROMPT, { numInferenceSteps: 1, taylorseer: 'yes' }), /taylorseer must be/);
  await refuses(noT5.text2image(PROMPT, { numInferenceSteps: 1, taylorseer: { disableCacheBeforeStep: -1 } }), /must not be negative/);
  noT5.dispose();

  const schnell = await DiffusionModel.load(fixture('flux-schnell'));
  await refuses(schnell.text2image(PROMPT, { numInferenceSteps: 1, width: 64, height: 64, guidanceScale: 3.5 }), /no guidance embedding/);
  await refuses(schnell.text2image(PROMPT, { numInferenceSteps: 1, width: 64, height: 64, negativePrompt2: 'x' }), /negative prompts/);
  await refuses(schnell.text2image(PROMPT, { numInferenceSteps: 1, width: 64, height: 64, maxSequenceLength: 0 }), /between 1 and 512/);
  await refuses(
    schnell.image2image(PROMPT, image, { numInferenceSteps: 2, width: 64, height: 64, numImagesPerPrompt: 2 }),
    /one image per call/,
  );
  const black = fs.readFileSync(
    await writePng(
      'black-mask',
      mask(80, 72, 3, () => 0),
      80,
      72,
      3,
    ),
  );
  await refuses(schnell.inpaint(PROMPT, image, black, { numInferenceSteps: 2, width: 64, height: 64 }), /the mask is empty/);
  schnell.dispose();

  const sd15 = await DiffusionModel.load(fixture('sd15'));
  await refuses(sd15.text2image(PROMPT, { numInferenceSteps: 1, taylorseer: true }), /Stable Diffusion 3 and FLUX only/);
  sd15.dispose();
});

test('FLUX step events carry decodable previews; TaylorSeer skips transformer calls; metrics name the encoders', async () => {
  const flux = await DiffusionModel.load(fixture('flux-dev'));
  const events = [];
  const result = await flux.text2image(PROMPT, {
    numInferenceSteps: 12,
    width: 64,
    height: 48,
    previews: 2,
    onStep: (e) => events.push(e),
  });
  assert.equal(result.steps, 12);
  assert.equal(result.metrics.stepMs.length, 12);
  // TaylorSeer defaults at 12 steps: the transformer runs at steps 0-5, 8, 10 and 11.
  assert.equal(result.metrics.denoiserMs.length, 9);
  assert.deepEqual(Object.keys(result.metrics.textEncoderMs).sort(), ['text_encoder', 'text_encoder_2']);
  const previews = events.filter((e) => e.preview);
  assert.ok(previews.length >= 1, 'at least one preview');
  assert.deepEqual([previews[0].preview[0].width, previews[0].preview[0].height], [64, 48]);
  const off = await flux.text2image(PROMPT, { numInferenceSteps: 12, width: 64, height: 48, taylorseer: false });
  assert.equal(off.metrics.denoiserMs.length, 12);
  flux.dispose();

  const sd3 = await DiffusionModel.load(fixture('sd3'));
  const sd3Result = await sd3.text2image(PROMPT, { numInferenceSteps: 2 });
  assert.deepEqual(Object.keys(sd3Result.metrics.textEncoderMs).sort(), ['text_encode', 'text_encode_2', 'text_encode_3']);
  sd3.dispose();
});
