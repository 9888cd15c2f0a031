'use strict';
// Runs parity cases on our engine and the oracle and collects one table row per case: every case twice in a row,
// then the first case again after the others; a refusal by the oracle must be an ERR_INVALID_ARGUMENT of ours.
const assert = require('node:assert/strict');
const fs = require('fs');
const { DiffusionModel } = require('../..');
const { runOracle, compareBytes, pixels, printTable, unrepeatable } = require('./oracle');
const { toOracleRequest } = require('./cases');

const TAYLORSEER_NAMES = {
  cacheInterval: 'cache_interval',
  disableCacheBeforeStep: 'disable_cache_before_step',
  disableCacheAfterStep: 'disable_cache_after_step',
};

function oracleRequest(model, c, defaultPrompt) {
  const request = toOracleRequest(c.task, model.dir, c.prompt ?? defaultPrompt, c.options, { image: c.image, mask: c.mask });
  const ts = c.options.taylorseer;
  if (ts !== undefined) {
    request.taylorseer = typeof ts === 'object' ? Object.fromEntries(Object.entries(ts).map(([k, v]) => [TAYLORSEER_NAMES[k], v])) : ts;
  }
  return request;
}

function runCase(model, c, defaultPrompt) {
  const prompt = c.prompt ?? defaultPrompt;
  if (c.task === 'text2image') return model.text2image(prompt, c.options);
  if (c.task === 'image2image') return model.image2image(prompt, fs.readFileSync(c.image), c.options);
  return model.inpaint(prompt, fs.readFileSync(c.image), fs.readFileSync(c.mask), c.options);
}

/**
 * The oracle's answers for `cases`, one oracle process per group (`groupOf(case)` names it; cases of a group share
 * the process's pipelines), two processes at a time.
 */
async function oracleInGroups(model, cases, defaultPrompt, groupOf) {
  const groups = new Map();
  cases.forEach((c, i) => {
    const key = groupOf(c);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(i);
  });
  const results = new Array(cases.length);
  const queue = [...groups.values()];
  const worker = async () => {
    for (let g = queue.shift(); g; g = queue.shift()) {
      const out = await runOracle(g.map((i) => oracleRequest(model, cases[i], defaultPrompt)));
      g.forEach((i, k) => {
        results[i] = out[k];
      });
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

/** Appends to `rows` a row per case of `model` ({name, dir}); `groupOf` splits the oracle runs (default: one). */
async function parity(rows, model, cases, { prompt, groupOf = () => 'all' }) {
  const oraclePromise = oracleInGroups(model, cases, prompt, groupOf);
  const ours = await DiffusionModel.load(model.dir);
  const order = [...cases.keys(), 0];
  const mine = [];
  for (const i of order) {
    const calls = [];
    for (let k = 0; k < 2; k += 1)
      calls.push(
        await runCase(ours, cases[i], prompt).then(
          (r) => ({ r }),
          (e) => ({ e }),
        ),
      );
    mine.push({ r: calls[0].r, again: calls[1].r, e: calls[0].e || calls[1].e });
  }
  ours.dispose();
  const oracle = await oraclePromise;
  order.forEach((i, k) => {
    const c = cases[i];
    const name = `${model.name} ${c.name}${k === cases.length ? ' (again, after the other cases)' : ''}`;
    const { r, again, e } = mine[k];
    if (oracle[i].error) {
      assert.ok(e, `${name}: the oracle refuses (${oracle[i].error.split('\n').pop()}) but we generated`);
      assert.equal(e.code, 'ERR_INVALID_ARGUMENT', `${name}: ${e.message}`);
      rows.push({ name: `${name} (both refuse)`, maxDiff: 0, exact: 1 });
      return;
    }
    if (e) throw new Error(`${name}: ${e.message}`, { cause: e });
    const [n, h, w] = oracle[i].shape;
    assert.equal(r.images.length, n, name);
    assert.deepEqual([r.height, r.width], [h, w], name);
    const [first, second] = [r, again].map((result) => compareBytes(pixels(result), oracle[i].data));
    rows.push({
      name,
      maxDiff: Math.max(first.maxDiff, second.maxDiff),
      exact: Math.min(first.exact, second.exact),
      repeatDiff: compareBytes(pixels(r), pixels(again)).maxDiff,
    });
  });
}

/** Prints the table and asserts that every row is pixel-equal to the oracle and every repeated call gave the same pixels. */
function assertAllExact(title, rows) {
  printTable(title, rows);
  assert.deepEqual(
    rows.filter((r) => r.maxDiff !== 0),
    [],
    'cases not pixel-equal',
  );
  assert.deepEqual(unrepeatable(rows), [], 'repeated calls gave different pixels');
}

module.exports = { parity, assertAllExact };
