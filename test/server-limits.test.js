'use strict';
// Limits on the real engine, through the real CLI (the fixtures): --max_resolution holds for the size the engine
// resolves (an edit or variation without size follows its image on SD 1.x and Z-Image, takes the model's default
// size on SD3 and FLUX; text-to-image without size takes the model's),
// image headers are checked before decoding, a LoRA path that is a directory is a clear load failure without
// "listening", and the timeouts of the CLI answer a stalled or oversized body promptly.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { fixture } = require('./helpers/paths');
const { startCli, runCli } = require('./helpers/server-http');
const { makeImage } = require('./helpers/server-fakes');
const { head, multipart, request, send } = require('./helpers/raw-http');
const { pngHeaderOnly } = require('./helpers/bad-input');

const MODEL = 'sd15';

async function edit(url, route, image, fields = {}) {
  const parts = Object.entries(fields).map(([name, value]) => ({ name, value: String(value) }));
  const { body, contentType } = multipart([...parts, { name: 'image', filename: 'in.png', data: image }]);
  return send(url, [request('POST', route, { 'Content-Type': contentType }, body)], { timeoutMs: 60000 });
}

test('--max_resolution applies to the size the engine resolves, for every task', async () => {
  const server = await startCli([
    '--model_name',
    MODEL,
    '--model_path',
    fixture('sd15'),
    '--max_resolution',
    '128x128',
    '--default_num_inference_steps',
    '2',
  ]);
  try {
    const wide = await makeImage(4104, 8);
    for (const route of ['/v1/images/edits', '/v1/images/variations']) {
      const res = await edit(server.url, route, wide, route.endsWith('edits') ? { prompt: 'p' } : {});
      assert.equal(res.status, 400, `${route}: ${res.body}`);
      assert.equal(res.json.error.code, 'size_too_large');
      assert.equal(res.json.error.param, 'image');
      assert.match(res.json.error.message, /4104x8/);
    }
    // The same image with a size that fits is fine: the engine resizes it.
    const sized = await edit(server.url, '/v1/images/edits', wide, { prompt: 'p', size: '64x64' });
    assert.equal(sized.status, 200, String(sized.body));
    assert.equal(sized.json.size, '64x64');
    // An image within the limit, no size: its own size.
    const small = await edit(server.url, '/v1/images/edits', await makeImage(96, 40), { prompt: 'p' });
    assert.equal(small.status, 200, String(small.body));
    assert.equal(small.json.size, '96x40');
    // A header claiming 20000x20000 (the pixels are never decoded): 413 at once.
    const refused = await edit(server.url, '/v1/images/edits', pngHeaderOnly(20000, 20000), { prompt: 'p' });
    assert.equal(refused.status, 413, String(refused.body));
    assert.equal(refused.json.error.code, 'image_too_large');
    assert.ok(refused.ms < 2000, `${refused.ms} ms`);
  } finally {
    await server.stop();
  }
  // Below the model's own size, text-to-image without size is refused too (it would run at the model's size).
  const tight = await startCli(['--model_name', MODEL, '--model_path', fixture('sd15'), '--max_resolution', '32x32']);
  try {
    const res = await send(
      tight.url,
      [request('POST', '/v1/images/generations', { 'Content-Type': 'application/json' }, '{"prompt":"p"}')],
      {
        timeoutMs: 60000,
      },
    );
    assert.equal(res.status, 400, String(res.body));
    assert.equal(res.json.error.code, 'size_too_large');
    assert.match(res.json.error.message, /the model's default/);
  } finally {
    await tight.stop();
  }
});

test('--max_resolution for SD3, FLUX and Z-Image image-to-image: the size each family actually runs at', async () => {
  // Without size, SD3 and FLUX image-to-image run at the model's default size, Z-Image at the input image's.
  const cases = [
    { model: 'sd3', fits: true },
    {
      model: 'flux-schnell',
      fits: false,
      why: /256x256 \(no size was given: this model's image-to-image then runs at the model's default size\)/,
    },
    { model: 'z-image', fits: false, why: /4104x8 \(no size was given: image-to-image then follows the uploaded image\)/, param: 'image' },
  ];
  const wide = await makeImage(4104, 8);
  for (const c of cases) {
    const server = await startCli([
      '--model_name',
      c.model,
      '--model_path',
      fixture(c.model),
      '--max_resolution',
      '128x128',
      '--default_num_inference_steps',
      '2',
    ]);
    try {
      const res = await edit(server.url, '/v1/images/edits', wide, { prompt: 'p', strength: 0.9 });
      if (c.fits) {
        assert.equal(res.status, 200, `${c.model}: ${res.body}`);
        const [w, h] = res.json.size.split('x').map(Number);
        assert.ok(w <= 128 && h <= 128, `${c.model}: ${res.json.size}`);
      } else {
        assert.equal(res.status, 400, `${c.model}: ${res.body}`);
        assert.equal(res.json.error.code, 'size_too_large');
        assert.equal(res.json.error.param, c.param ?? 'size');
        assert.match(res.json.error.message, c.why);
      }
      // Z-Image runs at the input's size only; the others take a size that fits.
      const fitting =
        c.model === 'z-image'
          ? await edit(server.url, '/v1/images/edits', await makeImage(96, 40), { prompt: 'p', strength: 0.9 })
          : await edit(server.url, '/v1/images/edits', wide, { prompt: 'p', strength: 0.9, size: '64x64' });
      assert.equal(fitting.status, 200, `${c.model}: ${fitting.body}`);
      assert.equal(fitting.json.size, c.model === 'z-image' ? '96x40' : '64x64');
    } finally {
      await server.stop();
    }
  }
});

test('the CLI timeouts: a stalled body gets 408 after --body_timeout, a 100 GB Content-Length 413 at once', async () => {
  const server = await startCli(['--model_name', MODEL, '--model_path', fixture('sd15'), '--body_timeout', '1', '--request_timeout', '3']);
  try {
    const stalled = await send(
      server.url,
      [head('POST', '/v1/images/generations', { 'Content-Type': 'application/json', 'Content-Length': 100 }), '{"prompt":'],
      { timeoutMs: 10000 },
    );
    assert.equal(stalled.status, 408);
    assert.equal(stalled.json.error.code, 'body_timeout');
    assert.ok(stalled.ms > 900 && stalled.ms < 3000, `${stalled.ms} ms`);
    const huge = await send(
      server.url,
      [
        head('POST', '/v1/images/generations', {
          'Content-Type': 'application/json',
          'Content-Length': 100 * 1024 ** 3,
          Expect: '100-continue',
        }),
      ],
      { timeoutMs: 10000 },
    );
    assert.equal(huge.status, 413);
    assert.deepEqual(huge.interim, []);
    assert.ok(huge.ms < 1000, `${huge.ms} ms`);
  } finally {
    await server.stop();
  }
});

test('a LoRA path that is a directory: a clear load failure, exit 1, never "listening"', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-lora-dir-'));
  const loraDir = path.join(dir, 'style.safetensors');
  fs.mkdirSync(loraDir);
  try {
    const r = await runCli([
      '--rest_port',
      '0',
      '--rest_bind_address',
      '127.0.0.1',
      '--model_name',
      MODEL,
      '--model_path',
      fixture('sd15'),
      '--source_loras',
      `style=${loraDir}`,
    ]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /model 'sd15' failed to load: adapter path .*style\.safetensors is a directory/);
    assert.doesNotMatch(r.stderr, /listening/);
    assert.doesNotMatch(r.stderr, /bad_alloc/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
