'use strict';
// The demo model (models/demo, trained by scripts/demo-model/make-demo-model.sh) draws what it is asked:
// held-out prompts (scripts/demo-model/eval-prompts.json, none of them a training caption) rendered by this
// library at the defaults the issue names (128x128, 20 steps, guidance 7.5, the model's PNDM scheduler) and
// read back by the shape judge (test/helpers/shape-judge.js). The thresholds are issue 15's: one-object
// prompts: colour >= 90 %, shape >= 80 %, position >= 85 % (of the dominant blob); two-object prompts:
// both asked colours present >= 70 %. A model that draws the wrong thing fails here.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { DiffusionModel } = require('..');
const { judge, score } = require('./helpers/shape-judge');
const { ROOT } = require('./helpers/paths');

// OVD_DEMO_MODEL points the test at another export (a candidate checkpoint) than the committed one
const MODEL = process.env.OVD_DEMO_MODEL ? path.resolve(process.env.OVD_DEMO_MODEL) : path.join(ROOT, 'models', 'demo');
const PROMPTS = JSON.parse(fs.readFileSync(path.join(ROOT, 'scripts', 'demo-model', 'eval-prompts.json'), 'utf8'));
const N_SINGLE = 60; // one-object prompts (the first of the held-out list)
const N_DOUBLE = 30; // two-object prompts
const TARGET = { colour: 0.9, shape: 0.8, position: 0.85, bothColours: 0.7 };

/** Confusion table (expected rows x found columns) as text, for the test log. */
function confusion(title, pairs) {
  const rows = [...new Set(pairs.map(([e]) => e))].sort();
  const cols = [...new Set(pairs.map(([, f]) => f))].sort();
  const width = Math.max(...[...rows, ...cols, title].map((s) => s.length)) + 1;
  const cell = (s) => String(s).padStart(width);
  const lines = [cell(title) + cols.map(cell).join('')];
  for (const r of rows) lines.push(cell(r) + cols.map((c) => cell(pairs.filter(([e, f]) => e === r && f === c).length || '.')).join(''));
  return lines.join('\n');
}

test('the demo model draws the colour, shape and position it is asked for (held-out prompts)', { timeout: 15 * 60_000 }, async (t) => {
  if (!fs.existsSync(path.join(MODEL, 'model_index.json'))) return t.skip(`no model at ${MODEL} (not trained or not committed yet)`);
  // Until the trained model is committed, models/demo holds a copy of the random-weight test model (see its README).
  const weights = (dir) => fs.readFileSync(path.join(dir, 'unet', 'openvino_model.bin'));
  if (weights(MODEL).equals(weights(path.join(ROOT, 'test', 'fixtures', 'sd15'))))
    return t.skip(`${MODEL} holds the random-weight placeholder (test/fixtures/sd15), not a trained model yet`);
  const model = await DiffusionModel.load(MODEL);
  t.after(() => model.dispose());
  const singles = PROMPTS.filter((p) => p.objects.length === 1).slice(0, N_SINGLE);
  const doubles = PROMPTS.filter((p) => p.objects.length === 2).slice(0, N_DOUBLE);
  const one = [];
  const two = [];
  const chosen = [...singles, ...doubles];
  for (let k = 0; k < chosen.length; k += 1) {
    const p = chosen[k];
    // seeds as scripts/demo-model/evaluate.js uses them, so the figures of both agree on the same prompts
    const r = await model.text2image(p.prompt, { width: 128, height: 128, numInferenceSteps: 20, guidanceScale: 7.5, seed: 1000 + k });
    const img = r.images[0];
    const verdict = judge({ data: img.data, width: img.width, height: img.height, channels: img.channels });
    const s = score(verdict, p);
    (p.objects.length === 1 ? one : two).push({ p, verdict, s });
  }
  const rate = (xs, f) => xs.filter(f).length / xs.length;
  const got = {
    colour: rate(one, (r) => r.s.single.colour),
    shape: rate(one, (r) => r.s.single.shape),
    position: rate(one, (r) => r.s.single.position),
    bothColours: rate(two, (r) => r.s.allColoursPresent),
  };
  // short position names keep the table narrow: 'in the top left corner' -> 'top-left', 'at the bottom' -> 'bottom'
  const short = (key, v) =>
    key === 'position' && v
      ? v
          .replace(/^(in|at|on) the /, '')
          .replace(/ corner$/, '')
          .replace(/ /g, '-')
      : v;
  const found = (r, key) => short(key, r.verdict.blobs[0]?.[key]) ?? '(none)';
  t.diagnostic(`one object (${one.length} prompts), dominant blob, expected (rows) vs found (columns):`);
  for (const key of ['colour', 'shape', 'position']) {
    const table = confusion(
      key,
      one.map((r) => [short(key, r.p.objects[0][key]), found(r, key)]),
    );
    for (const line of table.split('\n')) t.diagnostic(line);
  }
  t.diagnostic(`two objects (${two.length} prompts): both colours present in ${Math.round(got.bothColours * 100)} %`);
  const pct = (v) => `${Math.round(v * 1000) / 10} %`;
  t.diagnostic(
    `colour ${pct(got.colour)}, shape ${pct(got.shape)}, position ${pct(got.position)}, two-object colours ${pct(got.bothColours)}`,
  );
  const missed = Object.keys(TARGET).filter((key) => !(got[key] >= TARGET[key]));
  assert.deepEqual(
    missed.map((key) => `${key}: ${pct(got[key])} < ${pct(TARGET[key])}`),
    [],
    'below the issue-15 targets',
  );
});
