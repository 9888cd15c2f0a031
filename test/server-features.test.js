'use strict';
// Part 2 of the server against fake models (fast, exact): the SSE wire format, url responses and their expiry,
// PNG metadata, usage, random seeds, variations, the scheduler field, cancellation on disconnect, the bounded queue
// (429 / 503 / timeouts), /metrics, the request log lines and the shutdown drain. The same features against the
// real engine and the official client are in server-openai-features.test.js.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const { createApp } = require('../dist/server/app');
const { buildModelSettings } = require('../dist/server/settings');
const { createLogger } = require('../dist/server/log');
const { parametersText, textTokens } = require('../dist/server/output');
const { OvDiffusionError } = require('..');
const { fakeModel, makeImage, pngText } = require('./helpers/server-fakes');
const { withApp, parseSse } = require('./helpers/server-http');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Waits for a condition, failing after ms. */
async function until(condition, ms = 5000) {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${condition}`);
    await sleep(2);
  }
}

const one = (model = fakeModel(), flags = {}) => [{ name: 'sd', model, settings: buildModelSettings(flags) }];

async function post(url, body, headers = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

function form(fields, files = {}) {
  const body = new FormData();
  for (const [k, v] of Object.entries(fields)) body.append(k, String(v));
  for (const [k, bytes] of Object.entries(files)) body.append(k, new Blob([bytes]), `${k}.png`);
  return body;
}

async function postForm(url, body) {
  const res = await fetch(url, { method: 'POST', body });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

function metricValue(text, name, labels = {}) {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

test('stream: the exact SSE wire format, partial images with 0-based indices, then one completed event with usage', async () => {
  const model = fakeModel({ stepMs: 5 });
  await withApp(one(model), async (url) => {
    const res = await post(`${url}/v3/images/generations`, {
      prompt: 'a cat',
      stream: true,
      partial_images: 2,
      num_inference_steps: 6,
      rng_seed: 11,
      size: '32x16',
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform');
    assert.equal(res.headers.get('x-rng-seed'), '11');
    assert.match(res.text, /^event: image_generation\.partial_image\ndata: \{"type":"image_generation\.partial_image",/);
    assert.ok(res.text.endsWith('\n\n'));
    const { events } = parseSse(res.text);
    assert.deepEqual(
      events.map((e) => e.event),
      ['image_generation.partial_image', 'image_generation.partial_image', 'image_generation.completed'],
    );
    for (const { event, data } of events) {
      assert.equal(data.type, event);
      assert.equal(data.error, undefined);
      assert.ok(Number.isInteger(data.created_at));
      assert.equal(data.size, '32x16');
      assert.equal(data.output_format, 'png');
      assert.equal(data.background, 'opaque');
      assert.equal(data.quality, 'auto');
      assert.equal(Buffer.from(data.b64_json, 'base64').readUInt32BE(16), 32);
    }
    assert.deepEqual(
      events.slice(0, 2).map((e) => e.data.partial_image_index),
      [0, 1],
    );
    const done = events[2].data;
    assert.equal(done.partial_image_index, undefined);
    assert.deepEqual(Object.keys(done.usage).sort(), ['input_tokens', 'input_tokens_details', 'output_tokens', 'total_tokens']);
    assert.deepEqual(done.usage.input_tokens_details, { text_tokens: 2, image_tokens: 0 });
    assert.equal(done.usage.output_tokens, 2, '32x16 is two 16x16 patches');
    assert.equal(model.calls[0].options.previews, 2);
    assert.equal(model.calls[0].options.previewMode, 'fast', 'partial images are fast previews by default');

    const none = parseSse((await post(`${url}/v3/images/generations`, { prompt: 'x', stream: true, num_inference_steps: 3 })).text).events;
    assert.deepEqual(
      none.map((e) => e.event),
      ['image_generation.completed'],
    );
    assert.equal(model.calls[1].options.previews, undefined, 'partial_images 0: no preview decodes');
    await post(`${url}/v3/images/generations`, { prompt: 'x', partial_images: 3, num_inference_steps: 3 });
    assert.equal(model.calls[2].options.previews, undefined, 'partial_images without stream: no preview decodes');
    await post(`${url}/v3/images/generations`, {
      prompt: 'x',
      stream: true,
      partial_images: 1,
      preview_mode: 'full',
      num_inference_steps: 3,
    });
    assert.deepEqual([model.calls[3].options.previews, model.calls[3].options.previewMode], [1, 'full'], 'full previews on request');
  });
});

test('stream: edits use image_edit.* events; n > 1 gives one completed event per image and image_index on partials', async () => {
  const model = fakeModel({ stepMs: 2 });
  await withApp(one(model), async (url) => {
    const res = await postForm(
      `${url}/v1/images/edits`,
      form({ prompt: 'x', stream: 'true', partial_images: '1', n: '2', num_inference_steps: '4' }, { image: await makeImage() }),
    );
    assert.equal(res.status, 200);
    const { events } = parseSse(res.text);
    assert.deepEqual(
      events.map((e) => e.event),
      ['image_edit.partial_image', 'image_edit.partial_image', 'image_edit.completed', 'image_edit.completed'],
    );
    assert.deepEqual(
      events.slice(0, 2).map((e) => [e.data.partial_image_index, e.data.image_index]),
      [
        [0, 0],
        [0, 1],
      ],
    );
    assert.ok(events[3].data.usage.input_tokens_details.image_tokens === 16, 'a 64x64 input image is 16 image tokens');
  });
});

test('stream: keep-alives are comment lines; errors before the first event are plain JSON, after it an error event', async () => {
  await withApp(
    one(fakeModel({ stepMs: 25 })),
    async (url) => {
      const res = await post(`${url}/v3/images/generations`, { prompt: 'x', stream: true, num_inference_steps: 6 });
      const { events, comments } = parseSse(res.text);
      assert.ok(comments.includes('keep-alive'), res.text.slice(0, 200));
      assert.deepEqual(
        events.map((e) => e.event),
        ['image_generation.completed'],
      );
      const bad = await post(`${url}/v3/images/generations`, { prompt: 'x', stream: true, size: '64x-1' });
      assert.equal(bad.status, 400);
      assert.equal(bad.headers.get('content-type').split(';')[0], 'application/json');
      assert.equal(bad.json.error.param, 'size');
    },
    { serving: { keepAliveMs: 20 } },
  );

  const failing = fakeModel();
  failing.text2image = async (prompt, options) => {
    options.onStep({ step: 0, totalSteps: 2, preview: [new (require('..').GeneratedImage)(Buffer.alloc(8 * 8 * 3), 8, 8)] });
    await sleep(30);
    throw new OvDiffusionError('ERR_RUNTIME', 'the device was lost');
  };
  await withApp(one(failing), async (url, app) => {
    const res = await post(`${url}/v3/images/generations`, { prompt: 'x', stream: true, partial_images: 1 });
    assert.equal(res.status, 200);
    const { events } = parseSse(res.text);
    assert.deepEqual(
      events.map((e) => e.event),
      ['image_generation.partial_image', 'error'],
    );
    const { error } = events[1].data;
    assert.equal(events[1].data.type, 'error');
    assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(error.type, 'server_error');
    assert.match(error.message, /device was lost/);
    assert.equal(metricValue(await app.metrics.registry.metrics(), 'ov_diffusion_errors_total', { code: 'err_runtime' }), 1);
  });
});

test('response_format url: absolute links served by the server, gone after the TTL; 0 turns url off', async () => {
  await withApp(
    one(),
    async (url, app) => {
      const res = await post(`${url}/v1/images/generations`, { prompt: 'x', n: 2, response_format: 'url', output_format: 'webp' });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.data.length, 2);
      for (const item of res.json.data) {
        assert.equal(item.b64_json, undefined);
        assert.match(item.url, new RegExp(`^${url}/generated-images/[0-9a-f-]{36}\\.webp$`));
        const image = await fetch(item.url);
        assert.equal(image.status, 200);
        assert.equal(image.headers.get('content-type'), 'image/webp');
        assert.equal(Buffer.from(await image.arrayBuffer()).toString('latin1', 8, 12), 'WEBP');
      }
      assert.equal(app.images.size, 2);
      await sleep(400);
      app.images.sweep();
      assert.equal(app.images.size, 0);
      assert.equal((await fetch(res.json.data[0].url)).status, 404);
      assert.equal((await fetch(`${url}/generated-images/../package.json`)).status, 404);
    },
    { imageUrlTtlSeconds: 0.3 },
  );
  await withApp(
    one(),
    async (url) => {
      const res = await post(`${url}/v1/images/generations`, { prompt: 'x', response_format: 'url' });
      assert.match(res.json.data[0].url, /^https:\/\/images\.example\.com\/generated-images\//);
    },
    { serving: { publicUrl: 'https://images.example.com' } },
  );
  await withApp(
    one(),
    async (url) => {
      const res = await post(`${url}/v1/images/generations`, { prompt: 'x', response_format: 'url' });
      assert.equal(res.status, 400);
      assert.equal(res.json.error.param, 'response_format');
    },
    { imageUrlTtlSeconds: 0 },
  );
});

test('the stored images are deleted when the app is disposed', async () => {
  const app = createApp({ models: one() });
  const name = await app.images.put(Buffer.from('x'), 'png');
  const dir = fs.readdirSync(require('os').tmpdir()).filter((d) => d.startsWith('ov-diffusion-images-'));
  assert.ok(dir.length >= 1 && name.endsWith('.png'));
  const before = new Set(dir);
  app.dispose();
  const after = new Set(fs.readdirSync(require('os').tmpdir()).filter((d) => d.startsWith('ov-diffusion-images-')));
  assert.equal([...before].filter((d) => !after.has(d)).length, 1);
});

test('PNG metadata: a "parameters" text chunk with prompt, seed, steps, scheduler and model; off with pngMetadata false', async () => {
  await withApp(one(), async (url) => {
    const res = await post(`${url}/v3/images/generations`, {
      prompt: 'a red fox, 4k 狐',
      negative_prompt: 'blurry',
      rng_seed: 5,
      num_inference_steps: 3,
      guidance_scale: 6,
      scheduler: 'euler_discrete',
    });
    const text = pngText(Buffer.from(res.json.data[0].b64_json, 'base64'));
    assert.equal(
      text.parameters,
      'a red fox, 4k 狐\nNegative prompt: blurry\nSteps: 3, Sampler: EULER_DISCRETE, CFG scale: 6, Seed: 5, Size: 64x64, Model: sd',
    );
    const jpeg = await post(`${url}/v3/images/generations`, { prompt: 'x', output_format: 'jpeg' });
    assert.equal(Buffer.from(jpeg.json.data[0].b64_json, 'base64').subarray(0, 3).toString('hex'), 'ffd8ff');
  });
  await withApp(
    one(),
    async (url) => {
      const res = await post(`${url}/v3/images/generations`, { prompt: 'x' });
      assert.deepEqual(pngText(Buffer.from(res.json.data[0].b64_json, 'base64')), {});
    },
    { serving: { pngMetadata: false } },
  );
  assert.equal(
    parametersText({
      prompt: 'p',
      steps: 2,
      scheduler: 'DDIM',
      seed: 1,
      width: 8,
      height: 8,
      model: 'm',
      strength: 0.5,
      adapters: [{ name: 'ink', alpha: 0.8 }],
      batch: { size: 2, index: 1 },
    }),
    'p\nSteps: 2, Sampler: DDIM, Seed: 1, Size: 8x8, Model: m, Denoising strength: 0.5, Lora: ink:0.8, Batch size: 2, Batch pos: 1',
  );
});

test('usage in JSON responses; a fresh random seed per request (header), or the configured default (42 = OVMS)', async () => {
  const model = fakeModel();
  await withApp(one(model), async (url) => {
    const a = await post(`${url}/v3/images/generations`, { prompt: 'Three astronauts on the moon', n: 3, size: '64x32' });
    assert.deepEqual(a.json.usage, {
      input_tokens: 5,
      input_tokens_details: { text_tokens: 5, image_tokens: 0 },
      output_tokens: 24,
      total_tokens: 29,
      output_tokens_details: { image_tokens: 24, text_tokens: 0 },
    });
    const b = await post(`${url}/v3/images/generations`, { prompt: 'x' });
    const seeds = [a, b].map((r) => Number(r.headers.get('x-rng-seed')));
    assert.notEqual(seeds[0], seeds[1]);
    assert.deepEqual(
      model.calls.map((c) => c.options.seed),
      seeds,
    );
    assert.equal(textTokens('a, b!'), 4);
  });
  await withApp(
    one(model),
    async (url) => {
      const res = await post(`${url}/v3/images/generations`, { prompt: 'x' });
      assert.equal(res.headers.get('x-rng-seed'), '42');
      assert.equal(model.calls.at(-1).options.seed, 42);
    },
    { serving: { defaultRngSeed: 42 } },
  );
});

test('variations: image-to-image of the upload with an empty or configured prompt; no mask, no stream', async () => {
  const model = fakeModel();
  const png = await makeImage(48, 32);
  await withApp(
    one(model),
    async (url) => {
      const res = await postForm(
        `${url}/v1/images/variations`,
        form({ n: '2', response_format: 'b64_json', size: '64x64', user: 'u' }, { image: png }),
      );
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.data.length, 2);
      assert.equal(model.calls[0].task, 'image2image');
      assert.equal(model.calls[0].prompt, '');
      assert.ok(model.calls[0].image.equals(png));
      assert.equal(res.json.usage.input_tokens_details.image_tokens, 6);
      assert.equal(
        (await postForm(`${url}/v3/images/variations`, form({ prompt: 'sunset', strength: '0.4' }, { image: png }))).status,
        200,
      );
      assert.equal(model.calls[1].prompt, 'sunset');
      assert.equal(model.calls[1].options.strength, 0.4);
      for (const [body, param] of [
        [form({}, { image: png, mask: png }), 'mask'],
        [form({ stream: 'true' }, { image: png }), 'stream'],
        [form({}), 'image'],
      ]) {
        const bad = await postForm(`${url}/v3/images/variations`, body);
        assert.equal(bad.status, 400);
        assert.equal(bad.json.error.param, param);
      }
      assert.equal((await post(`${url}/v3/images/variations`, { prompt: 'x' })).status, 415);
      assert.equal((await fetch(`${url}/v3/images/variations`)).status, 405);
    },
    { serving: { variationPrompt: '' } },
  );
  await withApp(
    one(model),
    async (url) => {
      await postForm(`${url}/v3/images/variations`, form({}, { image: png }));
      assert.equal(model.calls.at(-1).prompt, 'a watercolor painting');
    },
    { serving: { variationPrompt: 'a watercolor painting' } },
  );
  await withApp(one(fakeModel({ tasks: ['inpainting'] })), async (url) => {
    const res = await postForm(`${url}/v3/images/variations`, form({}, { image: png }));
    assert.equal(res.status, 400);
    assert.equal(res.json.error.param, 'mask');
  });
});

test('scheduler: any engine scheduler by name (case-insensitive); FLOW_MATCH only for SD3/FLUX models', async () => {
  const model = fakeModel();
  await withApp(
    [
      { name: 'sd', model },
      { name: 'flux', model: fakeModel({ className: 'FluxPipeline' }) },
    ],
    async (url) => {
      for (const name of ['ddim', 'EULER_DISCRETE', 'Euler_Ancestral_Discrete', 'PNDM', 'LCM', 'LMS_DISCRETE', 'auto']) {
        assert.equal((await post(`${url}/v3/images/generations`, { model: 'sd', prompt: 'x', scheduler: name })).status, 200);
        assert.equal(model.calls.at(-1).options.scheduler, name.toUpperCase());
      }
      const flow = await post(`${url}/v3/images/generations`, { model: 'sd', prompt: 'x', scheduler: 'flow_match_euler_discrete' });
      assert.equal(flow.status, 400);
      assert.equal(flow.json.error.param, 'scheduler');
      assert.equal(
        (await post(`${url}/v3/images/generations`, { model: 'flux', prompt: 'x', scheduler: 'FLOW_MATCH_EULER_DISCRETE' })).status,
        200,
      );
    },
  );
});

test('a disconnected client cancels its generation at the next step and frees its slot; the log line says so', async () => {
  const lines = [];
  const logger = createLogger('INFO', (line) => lines.push(line));
  const model = fakeModel({ stepMs: 20, maxConcurrency: 1 });
  await withApp(
    one(model, { max_concurrency: '1' }),
    async (url) => {
      for (const stream of [false, true]) {
        const base = model.stepsRun;
        const controller = new AbortController();
        const request = fetch(`${url}/v3/images/generations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          signal: controller.signal,
          body: JSON.stringify({ prompt: 'cancel me', num_inference_steps: 100, stream, partial_images: stream ? 3 : undefined }),
        }).then((res) => res.text());
        await until(() => model.stepsRun >= base + 3);
        controller.abort();
        await assert.rejects(request);
        const atAbort = model.stepsRun;
        await sleep(100);
        assert.ok(model.stepsRun - atAbort <= 1, `steps after the disconnect: ${model.stepsRun - atAbort}`);
        assert.equal(model.running, 0);
        const next = await post(`${url}/v3/images/generations`, { prompt: 'next', num_inference_steps: 1 });
        assert.equal(next.status, 200);
      }
    },
    { logger },
  );
  const cancelled = lines.filter((l) => /cancelled=client/.test(l));
  assert.equal(cancelled.length, 2, lines.join('\n'));
  for (const line of cancelled) {
    assert.match(line, /status=499/);
    assert.match(line, /steps_after_cancel=[01] /);
  }
});

test('bounded queue: beyond the slots and the queue a 429 with Retry-After (JSON, even for streams); waiting too long a 503', async () => {
  const model = fakeModel({ stepMs: 20, maxConcurrency: 1, maxQueue: 1 });
  await withApp(one(model, { max_concurrency: '1', max_queue_size: '1' }), async (url, app) => {
    const body = { prompt: 'x', num_inference_steps: 10 };
    const first = post(`${url}/v3/images/generations`, body);
    const second = post(`${url}/v3/images/generations`, body);
    await until(() => model.waiting >= 1);
    const metrics = await app.metrics.registry.metrics();
    assert.equal(metricValue(metrics, 'ov_diffusion_queue_depth', { model: 'sd' }), 1);
    assert.equal(metricValue(metrics, 'ov_diffusion_running_jobs', { model: 'sd' }), 1);
    for (const stream of [false, true]) {
      const full = await post(`${url}/v3/images/generations`, { ...body, stream });
      assert.equal(full.status, 429);
      assert.equal(full.headers.get('content-type').split(';')[0], 'application/json');
      assert.equal(full.json.error.code, 'queue_full');
      assert.match(full.json.error.message, /--max_queue_size/);
      assert.ok(Number(full.headers.get('retry-after')) >= 1);
      assert.equal(full.headers.get('x-rng-seed'), null);
    }
    assert.deepEqual(
      (await Promise.all([first, second])).map((r) => r.status),
      [200, 200],
    );
  });

  const slow = fakeModel({ stepMs: 20, maxConcurrency: 1, queueTimeoutMs: 50 });
  await withApp(one(slow, { max_concurrency: '1' }), async (url) => {
    const first = post(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 10 });
    await until(() => slow.running >= 1);
    const late = await post(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 1 });
    assert.equal(late.status, 503);
    assert.equal(late.json.error.code, 'queue_timeout');
    assert.match(late.json.error.message, /timed out waiting for a free slot/);
    assert.equal((await first).status, 200);
  });
});

test('a model still loading: requests wait for it as its queue allows, then 503 with Retry-After; the wait is bounded', async () => {
  let finish;
  const loading = new Promise((resolve) => {
    finish = resolve;
  });
  const settings = buildModelSettings({ max_concurrency: '1', max_queue_size: '1' });
  await withApp([{ name: 'late', model: loading, settings }], async (url) => {
    const waiting = [
      post(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 1 }),
      post(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 1 }),
    ];
    await sleep(50);
    const refused = await post(`${url}/v3/images/generations`, { prompt: 'x' });
    assert.equal(refused.status, 503);
    assert.equal(refused.json.error.code, 'model_loading');
    assert.equal(refused.headers.get('retry-after'), '5');
    assert.equal(refused.headers.get('x-should-retry'), 'true');
    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.equal(metricValue(metrics, 'ov_diffusion_queue_depth', { model: 'late' }), 2);
    assert.equal(metricValue(metrics, 'ov_diffusion_model_ready', { model: 'late' }), 0);
    finish(fakeModel());
    assert.deepEqual(
      (await Promise.all(waiting)).map((r) => r.status),
      [200, 200],
    );
  });
  const never = new Promise(() => undefined);
  await withApp([{ name: 'never', model: never, settings: buildModelSettings({ queue_timeout: '0.05' }) }], async (url) => {
    const res = await post(`${url}/v3/images/generations`, { prompt: 'x' });
    assert.equal(res.status, 503);
    assert.equal(res.json.error.code, 'queue_timeout');
    assert.match(res.json.error.message, /did not finish loading within 0.05 s/);
  });
});

test('/metrics: requests by route and status, errors by code, steps, generation and step times change with requests', async () => {
  const model = fakeModel({ stepMs: 1 });
  await withApp(one(model), async (url) => {
    const scrape = async () => {
      const res = await fetch(`${url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /^text\/plain/);
      return res.text();
    };
    const before = await scrape();
    assert.equal(metricValue(before, 'ov_diffusion_http_requests_total', { route: '/images/generations' }), 0);
    await post(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 4, n: 2 });
    await post(`${url}/v1/images/generations`, { prompt: 'x', size: 'bad' });
    await fetch(`${url}/v3/models`);
    const after = await scrape();
    assert.equal(metricValue(after, 'ov_diffusion_http_requests_total', { route: '/images/generations', status: '200' }), 1);
    assert.equal(metricValue(after, 'ov_diffusion_http_requests_total', { route: '/images/generations', status: '400' }), 1);
    assert.equal(metricValue(after, 'ov_diffusion_http_requests_total', { route: '/models', status: '200' }), 1);
    assert.equal(metricValue(after, 'ov_diffusion_errors_total', { route: '/images/generations', code: 'invalid_value' }), 1);
    assert.equal(metricValue(after, 'ov_diffusion_denoising_steps_total', { model: 'sd' }), 4);
    assert.equal(metricValue(after, 'ov_diffusion_step_duration_seconds_count', { model: 'sd' }), 4);
    assert.equal(metricValue(after, 'ov_diffusion_generation_duration_seconds_count', { model: 'sd', task: 'text2image' }), 1);
    assert.equal(metricValue(after, 'ov_diffusion_images_generated_total', { model: 'sd' }), 2);
    assert.equal(metricValue(after, 'ov_diffusion_running_jobs', { model: 'sd' }), 0);
  });
});

test('one structured log line per request: id, model, size, steps, seed, time; health and metrics only at DEBUG', async () => {
  const lines = [];
  const logger = createLogger('INFO', (line) => lines.push(line));
  await withApp(
    one(),
    async (url) => {
      const res = await post(`${url}/v3/images/generations`, { prompt: 'x', size: '64x32', num_inference_steps: 3, rng_seed: 9 });
      await post(`${url}/v3/images/generations`, { prompt: 'x', n: 0 });
      await fetch(`${url}/healthz`);
      await fetch(`${url}/metrics`);
      await sleep(20);
      const requests = lines.filter((l) => /\]\[info\] request /.test(l));
      assert.equal(requests.length, 2, lines.join('\n'));
      const fields = Object.fromEntries(
        requests[0]
          .split('] request ')[1]
          .split(' ')
          .map((kv) => kv.split('=')),
      );
      assert.equal(fields.id, res.headers.get('x-request-id'));
      assert.equal(fields.model, 'sd');
      assert.equal(fields.size, '64x32');
      assert.equal(fields.steps, '3');
      assert.equal(fields.seed, '9');
      assert.equal(fields.status, '200');
      assert.ok(Number(fields.time_ms) >= 0);
      assert.match(requests[1], /status=400 .*error=invalid_value/);
    },
    { logger },
  );
});

test('drain (SIGTERM): readiness turns 503, new requests get 503, running ones finish within the grace time or are cancelled', async () => {
  const model = fakeModel({ stepMs: 10 });
  await withApp(one(model), async (url, app) => {
    const running = post(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 10 });
    await until(() => model.running >= 1);
    const drained = app.drain(2000);
    assert.equal((await fetch(`${url}/readyz`)).status, 503);
    const refused = await post(`${url}/v3/images/generations`, { prompt: 'x' });
    assert.equal(refused.status, 503);
    assert.equal(refused.json.error.code, 'shutting_down');
    assert.equal((await running).status, 200, 'finished within the grace time');
    assert.equal(await drained, 0);
  });
  const slow = fakeModel({ stepMs: 10 });
  await withApp(one(slow), async (url, app) => {
    const running = post(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 100 });
    await until(() => slow.stepsRun >= 2);
    const started = Date.now();
    assert.equal(await app.drain(50), 1);
    assert.ok(Date.now() - started < 500);
    const res = await running;
    assert.equal(res.status, 503);
    assert.equal(res.json.error.code, 'shutting_down');
    assert.equal(slow.running, 0);
  });
});

function editForm(fields, png) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('image', new Blob([png]), 'in.png');
  return form;
}

test('every HTTP parameter of lib/parameters.ts reaches the library by its library name, and its range is checked', async () => {
  const { GENERATION_PARAMETERS } = require('..');
  const sample = (p) => ({ string: 'text', int: p.min ?? 1, float: ((p.min ?? 0) + (p.max ?? 1)) / 2, scheduler: 'DDIM' })[p.type];
  const model = fakeModel();
  await withApp(one(model), async (url) => {
    for (const p of GENERATION_PARAMETERS.filter((spec) => spec.http !== false)) {
      // strength is for edits; every other parameter goes through a generation.
      const value = p.field === 'width' || p.field === 'height' ? 64 : sample(p);
      const res =
        p.field === 'strength'
          ? await postForm(`${url}/v3/images/edits`, editForm({ prompt: 'x', strength: String(value) }, await makeImage()))
          : await post(`${url}/v3/images/generations`, { prompt: 'x', [p.field]: value });
      assert.equal(res.status, 200, `${p.field}: ${res.text}`);
      assert.equal(model.calls.at(-1).options[p.name], value, p.field);
      for (const outside of [p.min !== undefined && p.min - 1, p.max !== undefined && p.max + 1].filter((v) => v !== false)) {
        const refused = await post(`${url}/v3/images/generations`, { prompt: 'x', [p.field]: outside });
        assert.equal(refused.status, 400, `${p.field}=${outside}`);
        assert.equal(refused.json.error.param, p.field);
      }
    }
  });
});

test('--default_guidance_scale: the guidance a request without guidance_scale runs with; a given one wins; checked at load', async () => {
  const model = fakeModel();
  await withApp(one(model, { default_guidance_scale: '2' }), async (url) => {
    assert.equal((await post(`${url}/v3/images/generations`, { prompt: 'x' })).status, 200);
    assert.equal((await post(`${url}/v3/images/generations`, { prompt: 'x', guidance_scale: 6 })).status, 200);
    assert.deepEqual(
      model.calls.map((c) => c.options.guidanceScale),
      [2, 6],
    );
    const options = await (await fetch(`${url}/v3/images/models`)).json();
    assert.equal(options.data.find((m) => m.id === 'sd').default_guidance_scale, 2);
  });
  const plain = fakeModel();
  await withApp(one(plain), async (url) => {
    assert.equal((await post(`${url}/v3/images/generations`, { prompt: 'x' })).status, 200);
    assert.equal(plain.calls[0].options.guidanceScale, undefined, "without the flag the model's own default applies");
  });
  assert.throws(() => buildModelSettings({ default_guidance_scale: '-1' }), /default_guidance_scale must be >= 0/);
  assert.throws(() => buildModelSettings({ default_guidance_scale: 'x' }), /default_guidance_scale must be a number/);
  assert.throws(
    () => buildModelSettings({ resolution: '512x512', default_guidance_scale: '2' }),
    /cannot be combined with one --resolution/,
  );
});
