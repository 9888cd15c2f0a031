'use strict';
// Static shapes (LoadOptions.reshape) against openvino_genai's reshape() + compile(): the calls of test/reshape.test.js and
// of the family parity suites.
const assert = require('node:assert/strict');
const fs = require('fs');
const { DiffusionModel } = require('../..');
const { fixture } = require('./paths');
const { runOracle, compareBytes, pixels } = require('./oracle');
const { toOracleRequest } = require('./cases');

const PROMPT = 'a photo of a cat';
// Not square, so a swapped width and height shows.
const SIZE = [64, 48];

function t2i(name, options = {}) {
  return { name, task: 'text2image', options: { numInferenceSteps: 3, ...options } };
}
function i2i(name) {
  return { name, task: 'image2image', options: { numInferenceSteps: 3, strength: Number(name.split('=')[1]) } };
}
function inpaint(name) {
  return { name, task: 'inpainting', options: { numInferenceSteps: 3 } };
}

function run(model, c, files) {
  if (c.task === 'text2image') return model.text2image(PROMPT, c.options);
  if (c.task === 'image2image') return model.image2image(PROMPT, fs.readFileSync(files.image), c.options);
  return model.inpaint(PROMPT, fs.readFileSync(files.image), fs.readFileSync(files.boxMask), c.options);
}

const describe = (s, [W, H]) => `${W}x${H} n=${s.numImagesPerPrompt}${s.guidanceScale === undefined ? '' : ` g=${s.guidanceScale}`}`;

/**
 * Rows for one model entry ({name, dir?, size?: [W, H] (default 64x48), shapes: [{shape, calls}]}): each call on the
 * reshaped model twice, the first again after the others, against the oracle's reshape() + compile() and against our
 * dynamic run of the same call.
 */
async function modelRows(entry, files) {
  const dir = entry.dir ?? fixture(entry.name);
  const [W, H] = entry.size ?? SIZE;
  const requests = [];
  for (const { shape, calls } of entry.shapes) {
    for (const c of calls) {
      const options = { ...c.options, width: W, height: H, numImagesPerPrompt: shape.numImagesPerPrompt };
      if (shape.guidanceScale !== undefined && options.guidanceScale === undefined) options.guidanceScale = shape.guidanceScale;
      const images = c.task === 'text2image' ? {} : { image: files.image, ...(c.task === 'inpainting' ? { mask: files.boxMask } : {}) };
      const guidance = shape.guidanceScale ?? 0; // FLUX: shapes nothing
      requests.push({ ...toOracleRequest(c.task, dir, PROMPT, options, images), reshape: [shape.numImagesPerPrompt, H, W, guidance] });
    }
  }
  const oracle = runOracle(requests);
  const rows = [];
  const dynamic = await DiffusionModel.load(dir);
  let k = 0;
  const ours = [];
  for (const { shape, calls } of entry.shapes) {
    const reshaped = await DiffusionModel.load(dir, { reshape: { width: W, height: H, ...shape } });
    const firstCall = pixels(await run(reshaped, calls[0], files));
    for (const c of calls) {
      const result = await run(reshaped, c, files);
      const again = await run(reshaped, c, files);
      assert.equal(result.images.length, shape.numImagesPerPrompt, `${entry.name} ${c.name}: the static count is the default`);
      assert.deepEqual([result.width, result.height], [W, H], `${entry.name} ${c.name}: the static size is the default`);
      const options = { ...c.options, width: W, height: H, numImagesPerPrompt: shape.numImagesPerPrompt };
      if (shape.guidanceScale !== undefined && options.guidanceScale === undefined) options.guidanceScale = shape.guidanceScale;
      const plain = await run(dynamic, { ...c, options }, files);
      ours.push({
        name: `${entry.name} ${describe(shape, [W, H])} ${c.task} ${c.name}`,
        data: pixels(result),
        again: pixels(again),
        dynamic: pixels(plain),
        index: k,
      });
      k += 1;
    }
    // The first call once more, after the others: still the same pixels.
    const later = pixels(await run(reshaped, calls[0], files));
    ours.push({
      name: `${entry.name} ${describe(shape, [W, H])} ${calls[0].task} ${calls[0].name} (again, after the others)`,
      data: later,
      again: firstCall,
      dynamic: ours[ours.length - calls.length].dynamic,
      index: k - calls.length,
    });
    reshaped.dispose();
  }
  dynamic.dispose();
  const answers = await oracle;
  for (const o of ours) {
    assert.ok(!answers[o.index].error, `${o.name}: oracle: ${answers[o.index].error}`);
    const [vsOracle, againVsOracle] = [o.data, o.again].map((data) => compareBytes(data, answers[o.index].data));
    const vsDynamic = compareBytes(o.data, o.dynamic);
    rows.push({
      name: o.name,
      maxDiff: Math.max(vsOracle.maxDiff, againVsOracle.maxDiff),
      exact: Math.min(vsOracle.exact, againVsOracle.exact),
      repeatDiff: compareBytes(o.data, o.again).maxDiff,
      dynamicMax: vsDynamic.maxDiff,
      dynamicExact: vsDynamic.exact,
    });
  }
  return rows;
}

/**
 * The refusals of a family whose static shapes hold the guidance batch only when the reshape's guidance is above
 * `threshold` (the oracle fails on all of them): on a 64x48 model reshaped with `guided` guidance, guidance at the
 * threshold, another sequence length, size or count; on one reshaped with guidance at the threshold, `guidedCall`.
 */
async function assertStaticRefusals(dir, prompt, { guided, threshold, guidedCall }) {
  const invalid = (pattern) => ({ code: 'ERR_INVALID_ARGUMENT', message: pattern });
  const opts = { numInferenceSteps: 1 };
  const model = await DiffusionModel.load(dir, { reshape: { width: 64, height: 48, guidanceScale: guided } });
  const reshaped = new RegExp(`reshaped for classifier-free guidance.*above ${threshold}; got ${threshold}`);
  await assert.rejects(model.text2image(prompt, { ...opts, guidanceScale: threshold }), invalid(reshaped));
  await assert.rejects(model.text2image(prompt, { ...opts, maxSequenceLength: 64 }), invalid(/compiled for 512 tokens.*got 64/));
  await assert.rejects(model.text2image(prompt, { ...opts, width: 64, height: 64 }), invalid(/64x48.*got 64x64/));
  await assert.rejects(model.text2image(prompt, { ...opts, numImagesPerPrompt: 2 }), invalid(/num_images_per_prompt 1.*got 2/));
  model.dispose();
  const plain = await DiffusionModel.load(dir, { reshape: { width: 64, height: 48, guidanceScale: threshold } });
  const without = new RegExp(`without classifier-free guidance.*at most ${threshold}; got ${guidedCall.guidanceScale}`);
  await assert.rejects(plain.text2image(prompt, { ...opts, ...guidedCall }), invalid(without));
  plain.dispose();
  await assert.rejects(DiffusionModel.load(dir, { reshape: { width: 66, height: 48 } }), invalid(/divisible by 4/));
}

module.exports = { PROMPT, SIZE, t2i, i2i, inpaint, run, modelRows, assertStaticRefusals };
