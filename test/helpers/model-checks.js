'use strict';
// Checks the family tests make on a loaded model without the oracle: the plan a call would run, a refusal naming its
// parameter, the previews a call's step events carry.
const assert = require('node:assert/strict');

/** Asserts a loaded model's class, family and tasks (in any order). */
function assertFamily(model, { className, family, tasks }) {
  assert.deepEqual(
    { className: model.className, family: model.family, tasks: [...model.tasks].sort() },
    { className, family, tasks: [...tasks].sort() },
  );
}

/**
 * The plan `call(options)` would run ({width, height, steps}), seen by its admit hook, which then refuses the call so
 * that nothing runs. `call` passes the options on, e.g. (o) => model.text2image(PROMPT, o).
 */
async function planOf(call) {
  let plan;
  const stop = new Error('planned');
  await assert.rejects(
    call({
      admit: (p) => {
        plan = p;
        throw stop;
      },
    }),
    (e) => e === stop,
  );
  return { width: plan.width, height: plan.height, steps: plan.numInferenceSteps };
}

/** Asserts that `promise` is refused as an invalid argument naming `param`, with a message matching `pattern`. */
const refusesParam = async (promise, param, pattern) =>
  assert.rejects(promise, (e) => e.code === 'ERR_INVALID_ARGUMENT' && e.param === param && pattern.test(e.message));

/** Asserts the refusals the flow-matching families share: the TaylorSeer cache and any scheduler but flow-match Euler. */
async function refusesTaylorSeerAndOtherSchedulers(model, prompt, options) {
  await refusesParam(model.text2image(prompt, { ...options, taylorseer: true }), 'taylorseer', /TaylorSeer/);
  await refusesParam(model.text2image(prompt, { ...options, scheduler: 'EULER_DISCRETE' }), 'scheduler', /FLOW_MATCH_EULER_DISCRETE/);
}

/**
 * A text2image call with a preview every step (options.previewMode picks the kind): asserts that it ran
 * options.numInferenceSteps steps with an event each and that a preview came at the options' size; returns
 * {result, events}.
 */
async function previewedCall(model, prompt, options) {
  const events = [];
  const result = await model.text2image(prompt, { ...options, previews: 1, onStep: (e) => events.push(e) });
  assert.equal(result.steps, options.numInferenceSteps);
  assert.equal(events.length, options.numInferenceSteps);
  const preview = events.find((e) => e.preview);
  assert.ok(preview, options.previewMode === 'fast' ? 'a fast preview' : 'a preview');
  assert.deepEqual([preview.preview[0].width, preview.preview[0].height], [options.width, options.height]);
  return { result, events };
}

module.exports = { assertFamily, planOf, refusesParam, refusesTaylorSeerAndOtherSchedulers, previewedCall };
