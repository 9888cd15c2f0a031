'use strict';
// Memory admission (lib/server/memory.ts): the estimate from a model folder and a call, the budget arithmetic (the
// largest --max_concurrency requests per model count, queued ones beyond them do not), and the server's answers:
// 400 insufficient_memory for a request that could never fit, 503 memory_busy (Retry-After) for one that cannot fit
// now, the estimate and the budget in /metrics, and --memory_budget on the command line.
const test = require('node:test');
const assert = require('node:assert/strict');
const { MemoryAdmission, estimateCallBytes, modelMemoryProfile, parseMemorySize } = require('../dist/server/memory');
const { parseArgs, CliError } = require('../dist/launcher/cli');
const { buildModelSettings } = require('../dist/server/settings');
const { fakeModel } = require('./helpers/server-fakes');
const { withApp } = require('./helpers/server-http');
const { fixture } = require('./helpers/paths');
const { withJsonPatch } = require('./helpers/cases');

const MIB = 2 ** 20;

test('profiles come from the model folders; the estimate grows with size and images, and with guidance', () => {
  const sd15 = modelMemoryProfile(fixture('sd15'));
  assert.deepEqual(
    { latentScale: sd15.latentScale, vaeChannels: sd15.vaeChannels, patch: sd15.patch, guidanceBatch: sd15.guidanceBatch },
    { latentScale: 2, vaeChannels: 16 + 32 / 4, patch: 1, guidanceBatch: 2 },
  );
  const flux = modelMemoryProfile(fixture('flux-schnell'));
  assert.equal(flux.guidanceBatch, 1);
  assert.equal(flux.patch, 2);
  assert.equal(modelMemoryProfile(fixture('sd3')).patch, 2);
  assert.equal(modelMemoryProfile(fixture('lcm')).guidanceBatch, 1);
  // FLUX.2 klein: 2x2 tokens; guidance doubles the batch only on a model that is not distilled.
  const klein = modelMemoryProfile(fixture('flux2-klein'));
  assert.deepEqual({ patch: klein.patch, guidanceBatch: klein.guidanceBatch }, { patch: 2, guidanceBatch: 1 });
  const guided = withJsonPatch(fixture('flux2-klein'), 'model_index.json', { is_distilled: false });
  assert.equal(modelMemoryProfile(guided).guidanceBatch, 2);
  const at = (width, n = 1) => estimateCallBytes(sd15, { task: 'text2image', width, height: width, numImagesPerPrompt: n });
  assert.ok(at(128) < at(256) && at(256) < at(512), 'larger sizes need more');
  assert.ok(at(256, 2) > at(256, 1) && at(256, 4) > at(256, 2), 'more images need more');
});

test('the budget: alone over it is "never", over it with the admitted requests "busy"; queued requests beyond the concurrency do not add', () => {
  const refuse = (kind, detail) => Object.assign(new Error(kind), { kind, detail });
  const admission = new MemoryAdmission({ budgetBytes: 1000, rss: () => 400 });
  assert.throws(
    () => admission.admit('a', 1, 700, refuse),
    (e) => e.kind === 'never' && e.detail.freeBytes === 600,
  );
  const first = admission.admit('a', 1, 300, refuse);
  // 'a' runs one at a time: a second request waits in its queue and adds nothing to the peak.
  const queued = admission.admit('a', 1, 250, refuse);
  assert.equal(admission.reservedBytes, 300);
  // 'b' would run beside 'a': 400 + 300 + 400 > 1000.
  assert.throws(
    () => admission.admit('b', 1, 400, refuse),
    (e) => e.kind === 'busy' && e.detail.freeBytes === 300,
  );
  const b = admission.admit('b', 1, 300, refuse);
  assert.equal(admission.reservedBytes, 600);
  first();
  first(); // a release is idempotent
  assert.equal(admission.reservedBytes, 550);
  queued();
  b();
  assert.equal(admission.reservedBytes, 0);
  // With concurrency 2, the two largest requests of a model count.
  const c1 = admission.admit('c', 2, 200, refuse);
  const c2 = admission.admit('c', 2, 250, refuse);
  admission.admit('c', 2, 100, refuse);
  assert.equal(admission.reservedBytes, 450);
  assert.throws(
    () => admission.admit('c', 2, 400, refuse),
    (e) => e.kind === 'busy',
  );
  c1();
  c2();
  const off = new MemoryAdmission({ budgetBytes: 0, rss: () => 10 ** 12 });
  assert.equal(typeof off.admit('a', 1, 10 ** 12, refuse), 'function', 'budget 0 admits everything');
});

test('--memory_budget: sizes, 0 = off, the default left to the machine; bad values refused', () => {
  assert.equal(parseMemorySize('x', '12GB'), 12 * 2 ** 30);
  assert.equal(parseMemorySize('x', '800mb'), 800 * MIB);
  assert.equal(parseMemorySize('x', '1.5G'), 1.5 * 2 ** 30);
  assert.equal(parseMemorySize('x', '123456'), 123456);
  assert.equal(parseMemorySize('x', 'off'), 0);
  assert.equal(parseArgs([]).memoryBudgetBytes, undefined);
  assert.equal(parseArgs(['--memory_budget', '2GB']).memoryBudgetBytes, 2 * 2 ** 30);
  assert.equal(parseArgs(['--memory_budget=0']).memoryBudgetBytes, 0);
  for (const bad of ['lots', '-1GB', '12 parsecs', ''])
    assert.throws(
      () => parseArgs(['--memory_budget', bad]),
      (e) => e instanceof CliError,
      bad,
    );
});

async function post(url, body) {
  const res = await fetch(`${url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

test('the server refuses what cannot fit before it starts: 400 insufficient_memory, 503 memory_busy; /metrics has the estimate', async () => {
  const profile = modelMemoryProfile(fixture('sd15'));
  const estimate = (size, n = 1) => estimateCallBytes(profile, { task: 'text2image', width: size, height: size, numImagesPerPrompt: n });
  // Room for one 512x512 request beside this process, not for two.
  const budget = process.memoryUsage.rss() + Math.round(1.5 * estimate(512)) + 64 * MIB;
  const model = fakeModel({ stepMs: 40, maxConcurrency: 2 });
  const models = [{ name: 'sd', model, path: fixture('sd15'), settings: buildModelSettings({ max_concurrency: '2' }) }];
  await withApp(
    models,
    async (url) => {
      const huge = await post(url, { prompt: 'p', size: '4096x4096', num_inference_steps: 1 });
      assert.equal(huge.status, 400, JSON.stringify(huge.json));
      assert.equal(huge.json.error.code, 'insufficient_memory');
      assert.equal(huge.json.error.param, 'size');
      assert.match(huge.json.error.message, /needs about \d+ MiB at its peak \(4096x4096, 1 image\(s\)\)/);
      assert.equal(model.calls.length, 0, 'refused before the model was called');

      // Two at once: the second cannot fit while the first runs, and is told to retry.
      const first = post(url, { prompt: 'p', size: '512x512', num_inference_steps: 10 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = await post(url, { prompt: 'p', size: '512x512', num_inference_steps: 1 });
      assert.equal(second.status, 503, JSON.stringify(second.json));
      assert.equal(second.json.error.code, 'memory_busy');
      assert.ok(Number(second.headers.get('retry-after')) >= 1);
      assert.equal((await first).status, 200);
      // Once the first is done, the same request fits.
      assert.equal((await post(url, { prompt: 'p', size: '512x512', num_inference_steps: 1 })).status, 200);

      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, new RegExp(`ov_diffusion_memory_budget_bytes ${budget}`));
      assert.match(metrics, /ov_diffusion_memory_reserved_bytes 0/);
      assert.match(metrics, /ov_diffusion_memory_baseline_bytes \d+/);
      assert.match(metrics, /ov_diffusion_memory_estimate_bytes_count\{model="sd"\} 4/);
      assert.match(metrics, /ov_diffusion_errors_total\{route="\/images\/generations",code="insufficient_memory"\} 1/);
      assert.match(metrics, /ov_diffusion_errors_total\{route="\/images\/generations",code="memory_busy"\} 1/);
    },
    { memoryBudgetBytes: budget },
  );
});
