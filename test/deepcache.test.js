'use strict';
// DeepCache for UNet models (load option deepcache, call option deepcacheInterval): the UNet cut at load into the
// whole graph with the deep feature as an extra output, and a shallow graph that takes it as an input.
// Checked on every UNet layout of the fixtures, in f32 inference precision: a model loaded with DeepCache gives the
// uncached model's pixels byte for byte when a call does not cache (the extra output leaves the UNet's own output as
// it was: every cache-refresh step is a plain UNet step); cached calls are deterministic, run the shallow graph (their
// pixels differ) and take LoRA adapters in both graphs; bad options are refused. In BF16 inference precision (the CPU
// plugin's default on CPUs with BF16) the exposed feature can change the CPU plugin's fusions around it, so there the
// uncached pixels of a DeepCache-loaded model are only close to the plain model's (the last test; README "DeepCache").
// Quality and speed are measured in bench/deepcache-quality.js (demo model: judge accuracy, PSNR) and bench/run.js
// --cases deepcache (against openvino_genai).
const test = require('node:test');
const assert = require('node:assert/strict');
const { DiffusionModel, DEMO_MODEL_DIR } = require('..');
const { fixture } = require('./helpers/paths');
const { startCli, runCli } = require('./helpers/server-http');
const { buildModelSettings, loadOptions } = require('../dist/server/settings');

const CALL = { width: 64, height: 64, numInferenceSteps: 9, seed: 11 };
const PROMPT = 'a red square on a blue background';
const same = (a, b) => Buffer.compare(a.images[0].data, b.images[0].data) === 0;

const F32 = { properties: { INFERENCE_PRECISION_HINT: 'f32' } };

async function withModels(dir, options, fn) {
  const plain = await DiffusionModel.load(dir, { ...F32, ...options });
  const cached = await DiffusionModel.load(dir, { ...F32, ...options, deepcache: true });
  try {
    await fn(plain, cached);
  } finally {
    plain.dispose();
    cached.dispose();
  }
}

for (const name of ['sd15', 'sd2-vpred', 'sdxl', 'lcm']) {
  test(`DeepCache on ${name}: uncached calls keep the pixels; cached calls are deterministic and differ`, async () => {
    await withModels(fixture(name), {}, async (plain, cached) => {
      const reference = await plain.text2image(PROMPT, CALL);
      assert.ok(same(reference, await cached.text2image(PROMPT, CALL)), 'no deepcacheInterval: the uncached pixels');
      assert.ok(same(reference, await cached.text2image(PROMPT, { ...CALL, deepcacheInterval: 1 })), 'interval 1: the uncached pixels');
      const first = await cached.text2image(PROMPT, { ...CALL, deepcacheInterval: 3 });
      const again = await cached.text2image(PROMPT, { ...CALL, deepcacheInterval: 3 });
      assert.ok(same(first, again), 'the same cached call gives the same pixels');
      assert.ok(!same(first, reference), 'interval 3 ran the shallow UNet on some steps');
      // Every UNet call is timed, the shallow ones too; they cost less than whole-UNet calls.
      assert.equal(first.metrics.denoiserMs.length, reference.metrics.denoiserMs.length);
      // And an uncached call after cached ones is back to the uncached pixels (nothing of the cache leaks).
      assert.ok(same(reference, await cached.text2image(PROMPT, CALL)));
    });
  });
}

test('DeepCache on a dedicated inpainting model (9-channel UNet)', async () => {
  await withModels(fixture('sd-inpaint'), {}, async (plain, cached) => {
    const size = 64;
    const image = { data: Buffer.alloc(size * size * 3, 200), width: size, height: size, channels: 3 };
    const mask = { data: Buffer.alloc(size * size, 0), width: size, height: size, channels: 1 };
    for (let y = 16; y < 48; y++) mask.data.fill(255, y * size + 16, y * size + 48);
    const call = { numInferenceSteps: 6, seed: 5 };
    const reference = await plain.inpaint(PROMPT, image, mask, call);
    assert.ok(same(reference, await cached.inpaint(PROMPT, image, mask, call)));
    const first = await cached.inpaint(PROMPT, image, mask, { ...call, deepcacheInterval: 2 });
    assert.ok(same(first, await cached.inpaint(PROMPT, image, mask, { ...call, deepcacheInterval: 2 })));
    assert.ok(!same(first, reference));
  });
});

test('DeepCache with LoRA: adapters apply in both graphs, and switching them per call leaves nothing behind', async () => {
  const adapters = { a: fixture('loras/sd15-kohya-a.safetensors') };
  await withModels(fixture('sd15'), { adapters }, async (plain, cached) => {
    const withA = { ...CALL, adapters: ['a'] };
    assert.ok(same(await plain.text2image(PROMPT, withA), await cached.text2image(PROMPT, withA)), 'uncached with an adapter');
    const cachedA = await cached.text2image(PROMPT, { ...withA, deepcacheInterval: 3 });
    const cachedNone = await cached.text2image(PROMPT, { ...CALL, deepcacheInterval: 3 });
    assert.ok(!same(cachedA, cachedNone), 'the adapter changes the cached image');
    assert.ok(same(cachedA, await cached.text2image(PROMPT, { ...withA, deepcacheInterval: 3 })), 'with it again: the same pixels');
    assert.ok(same(cachedNone, await cached.text2image(PROMPT, { ...CALL, deepcacheInterval: 3 })), 'without it again: the same pixels');
  });
});

test('DeepCache with static shapes', async () => {
  const reshape = { width: 64, height: 64, guidanceScale: 7.5 };
  await withModels(fixture('sd15'), { reshape }, async (plain, cached) => {
    const call = { numInferenceSteps: 6, seed: 2 };
    const reference = await plain.text2image(PROMPT, call);
    assert.ok(same(reference, await cached.text2image(PROMPT, call)));
    assert.ok(!same(reference, await cached.text2image(PROMPT, { ...call, deepcacheInterval: 2 })));
  });
});

test('DeepCache: deeper branches, and what is refused', async () => {
  // The demo model's UNet has three up blocks of two layers: branches 0..4 cut it; 5 would leave no deep part.
  const demo = DEMO_MODEL_DIR;
  const deeper = await DiffusionModel.load(demo, { deepcache: { branch: 3 } });
  try {
    const call = { width: 64, height: 64, numInferenceSteps: 6, seed: 1, deepcacheInterval: 2 };
    const a = await deeper.text2image('a big red circle', call);
    assert.ok(same(a, await deeper.text2image('a big red circle', call)));
  } finally {
    deeper.dispose();
  }
  await assert.rejects(DiffusionModel.load(demo, { deepcache: { branch: 5 } }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /branch 5 leaves no deep part.*0\.\.4/,
  });
  await assert.rejects(DiffusionModel.load(demo, { deepcache: { branch: -1 } }), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(DiffusionModel.load(demo, { deepcache: 'yes' }), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(DiffusionModel.load(fixture('sd3'), { deepcache: true }), { code: 'ERR_INVALID_ARGUMENT', message: /UNet models/ });
  const plain = await DiffusionModel.load(fixture('sd15'));
  try {
    await assert.rejects(plain.text2image(PROMPT, { ...CALL, deepcacheInterval: 3 }), {
      code: 'ERR_INVALID_ARGUMENT',
      message: /loaded without DeepCache/,
    });
    await assert.rejects(plain.text2image(PROMPT, { ...CALL, deepcacheInterval: 0 }), { code: 'ERR_INVALID_ARGUMENT' });
    await assert.rejects(plain.text2image(PROMPT, { ...CALL, deepcacheInterval: 1.5 }), { code: 'ERR_INVALID_ARGUMENT' });
  } finally {
    plain.dispose();
  }
  const sd3 = await DiffusionModel.load(fixture('sd3'));
  try {
    await assert.rejects(sd3.text2image(PROMPT, { ...CALL, deepcacheInterval: 2 }), {
      code: 'ERR_INVALID_ARGUMENT',
      message: /UNet models/,
    });
  } finally {
    sd3.dispose();
  }
});

test('server: --deepcache_interval loads the model with DeepCache and is the default of deepcache_interval', async (t) => {
  // The CLI arguments serving the sd15 fixture as 'sd15', with more flags.
  const sd15 = (...flags) => ['--model_name', 'sd15', '--model_path', fixture('sd15'), ...flags];
  const f32 = ['--plugin_config', JSON.stringify(F32.properties)];
  const cached = await startCli(sd15('--deepcache_interval', '3', ...f32));
  const plain = await startCli(sd15(...f32));
  t.after(() => Promise.all([cached.stop(), plain.stop()]));
  const generate = async (server, extra) => {
    const res = await fetch(`${server.url}/v3/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sd15', prompt: PROMPT, size: '64x64', num_inference_steps: 9, rng_seed: 4, ...extra }),
    });
    return { status: res.status, json: await res.json() };
  };
  const image = (r) => r.json.data[0].b64_json;
  const reference = await generate(plain, {});
  assert.equal(reference.status, 200);
  const byDefault = await generate(cached, {});
  const explicit = await generate(cached, { deepcache_interval: 3 });
  const uncached = await generate(cached, { deepcache_interval: 1 });
  assert.equal(image(byDefault), image(explicit), 'the flag is the default interval');
  assert.notEqual(image(byDefault), image(reference));
  assert.equal(image(uncached), image(reference), 'deepcache_interval 1: the uncached pixels');
  // --deepcache_branch: a deeper cut; checked by the flag parser and by the engine (the fixture has 4 up layers: 0..2).
  assert.deepEqual(loadOptions(buildModelSettings({ deepcache_interval: '2', deepcache_branch: '1' })).deepcache, { branch: 1 });
  assert.throws(() => buildModelSettings({ deepcache_branch: '1' }), /deepcache_branch needs --deepcache_interval/);
  assert.throws(() => buildModelSettings({ deepcache_interval: '2', deepcache_branch: '-1' }), /deepcache_branch/);
  const deep = await startCli(sd15('--deepcache_interval', '2', '--deepcache_branch', '1'));
  await deep.stop();
  const tooDeep = await runCli(['--rest_port', '0', ...sd15('--deepcache_interval', '2', '--deepcache_branch', '9')]);
  assert.equal(tooDeep.status, 1, tooDeep.stdout + tooDeep.stderr);
  assert.match(tooDeep.stdout + tooDeep.stderr, /branch 9 leaves no deep part/);
  const models = await (await fetch(`${cached.url}/v3/images/models`)).json();
  assert.equal(models.data.find((m) => m.id === 'sd15').default_deepcache_interval, 3);
  // Refused with OpenAI-shaped errors: on a model loaded without DeepCache, and out of range.
  for (const [server, extra, pattern] of [
    [plain, { deepcache_interval: 3 }, /loaded without DeepCache/],
    [cached, { deepcache_interval: 0 }, /deepcache_interval/],
    [cached, { deepcache_interval: 'often' }, /deepcache_interval/],
  ]) {
    const r = await generate(server, extra);
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(r.json.error.message, pattern);
  }
});

test('DeepCache in the default inference precision: uncached calls stay close to the plain model, cached ones repeat', async () => {
  for (const name of ['sd15', 'sdxl']) {
    const plain = await DiffusionModel.load(fixture(name));
    const cached = await DiffusionModel.load(fixture(name), { deepcache: true });
    try {
      const a = (await plain.text2image(PROMPT, CALL)).images[0].data;
      const b = (await cached.text2image(PROMPT, CALL)).images[0].data;
      let worst = 0;
      for (let i = 0; i < a.length; i += 1) worst = Math.max(worst, Math.abs(a[i] - b[i]));
      // Measured: 0 in f32 (above); 2 to 10 in BF16 on the fixtures. A broken cut gives noise (~100+).
      assert.ok(worst <= 16, `${name}: uncached DeepCache pixels within ${worst}/255 of the plain model's (> 16)`);
      const call = { ...CALL, deepcacheInterval: 3 };
      assert.ok(same(await cached.text2image(PROMPT, call), await cached.text2image(PROMPT, call)));
    } finally {
      plain.dispose();
      cached.dispose();
    }
  }
});
