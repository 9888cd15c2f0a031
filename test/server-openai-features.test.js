'use strict';
// Part 2 of the server with the official `openai` npm client against the real server process and the real engine
// (the 64x64 demo model, few steps): streaming with 0, 1 and 3 partial images for generate and edit, jpeg and webp,
// url responses fetched back, variations, cancellation on disconnect (the engine stops within one step), queue-full
// 429 as RateLimitError, /metrics moving with requests, and SIGTERM with a request in flight.
const test = require('node:test');
const assert = require('node:assert/strict');
const { OpenAI, toFile, RateLimitError, InternalServerError, APIConnectionError, APIUserAbortError } = require('openai');
const { fixture } = require('./helpers/paths');
const { makeImage } = require('./helpers/server-fakes');
const { startCli } = require('./helpers/server-http');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const MODEL = 'sd15';

let server;
let client;

test.before(async () => {
  server = await startCli(['--model_name', MODEL, '--model_path', fixture('sd15'), '--max_concurrency', '1', '--max_queue_size', '1']);
  client = new OpenAI({ baseURL: `${server.url}/v3`, apiKey: 'unused', maxRetries: 0 });
});

test.after(async () => {
  await server?.stop();
});

function magic(b64) {
  const bytes = Buffer.from(b64, 'base64');
  if (bytes.subarray(0, 8).toString('hex') === '89504e470d0a1a0a')
    return { format: 'png', width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20), bytes };
  if (bytes.subarray(0, 3).toString('hex') === 'ffd8ff') return { format: 'jpeg', bytes };
  if (bytes.toString('latin1', 8, 12) === 'WEBP') return { format: 'webp', bytes };
  return { format: 'unknown', bytes };
}

/** The value of a Prometheus sample (summed over the series matching the labels). */
async function metric(url, name, labels = {}) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return text
    .split('\n')
    .filter((line) => (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && want.every((w) => line.includes(w)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

async function until(condition, ms = 20000) {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${condition}`);
    await sleep(10);
  }
}

/** The server's request log lines (logfmt) as objects. */
function requestLines(output) {
  return output
    .split('\n')
    .filter((line) => /\]\[info\] request /.test(line))
    .map((line) =>
      Object.fromEntries(
        line
          .split('] request ')[1]
          .split(' ')
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      ),
    );
}

async function collect(stream) {
  const events = [];
  for await (const event of stream) events.push(event);
  return events;
}

function checkStream(events, prefix, partials, format = 'png') {
  assert.deepEqual(
    events.map((e) => e.type),
    [...Array(partials).fill(`${prefix}.partial_image`), `${prefix}.completed`],
  );
  assert.deepEqual(
    events.slice(0, -1).map((e) => e.partial_image_index),
    [...Array(partials).keys()],
  );
  for (const event of events) {
    assert.equal(magic(event.b64_json).format, format);
    assert.equal(event.output_format, format);
    assert.equal(event.size, '64x64');
  }
  const { usage } = events.at(-1);
  assert.ok(usage.output_tokens === 16 && usage.total_tokens === usage.input_tokens + usage.output_tokens);
}

test('images.generate with stream: 0, 1 and 3 partial images (decoded previews), then the completed image', async () => {
  for (const partials of [0, 1, 3]) {
    const stream = await client.images.generate({
      model: MODEL,
      prompt: 'a lighthouse at dusk',
      stream: true,
      partial_images: partials,
      num_inference_steps: 6,
      rng_seed: 3,
    });
    const events = await collect(stream);
    checkStream(events, 'image_generation', partials);
    const previews = new Set(events.slice(0, -1).map((e) => e.b64_json));
    assert.equal(previews.size, partials, 'each preview is another denoising state');
  }
  const plain = await client.images.generate({ model: MODEL, prompt: 'a lighthouse at dusk', num_inference_steps: 6, rng_seed: 3 });
  const streamed = await collect(
    await client.images.generate({
      model: MODEL,
      prompt: 'a lighthouse at dusk',
      stream: true,
      partial_images: 2,
      num_inference_steps: 6,
      rng_seed: 3,
    }),
  );
  assert.ok(magic(plain.data[0].b64_json).bytes.equals(magic(streamed.at(-1).b64_json).bytes), 'streaming does not change the image');
});

test('images.edit with stream: 0, 1 and 3 partial images; inpainting streams too', async () => {
  const picture = await makeImage(64, 64, 'png', { r: 20, g: 120, b: 200 });
  for (const partials of [0, 1, 3]) {
    const stream = await client.images.edit({
      model: MODEL,
      prompt: 'in the jungle',
      image: await toFile(picture, 'photo.png', { type: 'image/png' }),
      stream: true,
      partial_images: partials,
      num_inference_steps: 8,
      strength: 0.9,
    });
    const events = await collect(stream);
    checkStream(events, 'image_edit', partials);
    assert.equal(events.at(-1).usage.input_tokens_details.image_tokens, 16);
  }
  const mask = await makeImage(64, 64, 'png', { r: 255, g: 255, b: 255 });
  const inpaint = await collect(
    await client.images.edit({
      model: MODEL,
      prompt: 'a dog',
      image: await toFile(picture, 'a.png'),
      mask: await toFile(mask, 'm.png'),
      stream: true,
      partial_images: 1,
      num_inference_steps: 4,
    }),
  );
  checkStream(inpaint, 'image_edit', 1);
});

test('jpeg and webp outputs (output_compression), streamed and not', async () => {
  const jpeg = await client.images.generate({
    model: MODEL,
    prompt: 'x',
    output_format: 'jpeg',
    output_compression: 40,
    num_inference_steps: 2,
  });
  assert.equal(jpeg.output_format, 'jpeg');
  assert.equal(magic(jpeg.data[0].b64_json).format, 'jpeg');
  const webp = await client.images.generate({ model: MODEL, prompt: 'x', output_format: 'webp', num_inference_steps: 2 });
  assert.equal(magic(webp.data[0].b64_json).format, 'webp');
  const events = await collect(
    await client.images.generate({
      model: MODEL,
      prompt: 'x',
      output_format: 'webp',
      stream: true,
      partial_images: 1,
      num_inference_steps: 4,
    }),
  );
  checkStream(events, 'image_generation', 1, 'webp');
  const edit = await client.images.edit({
    model: MODEL,
    prompt: 'x',
    image: await toFile(await makeImage(), 'a.png'),
    output_format: 'jpeg',
    num_inference_steps: 2,
  });
  assert.equal(magic(edit.data[0].b64_json).format, 'jpeg');
});

test('response_format url: the links are fetched back; the PNG carries the parameters with the seed of the x-rng-seed header', async () => {
  const { data: result, response } = await client.images
    .generate({ model: MODEL, prompt: 'Three astronauts on the moon', n: 2, num_inference_steps: 3, response_format: 'url' })
    .withResponse();
  const seed = response.headers.get('x-rng-seed');
  assert.match(seed, /^\d+$/);
  assert.equal(result.data.length, 2);
  for (const [index, item] of result.data.entries()) {
    const res = await fetch(item.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    const bytes = Buffer.from(await res.arrayBuffer());
    assert.equal(magic(bytes.toString('base64')).format, 'png');
    const text = bytes.toString('latin1');
    assert.ok(
      text.includes(
        `parameters\0Three astronauts on the moon\nSteps: 3, Sampler: PNDM, Seed: ${seed}, Size: 64x64, Model: ${MODEL}, Batch size: 2, Batch pos: ${index}`,
      ),
    );
  }
  // The same seed gives the same images back.
  const again = await client.images.generate({
    model: MODEL,
    prompt: 'Three astronauts on the moon',
    n: 2,
    num_inference_steps: 3,
    rng_seed: Number(seed),
  });
  const first = Buffer.from(await (await fetch(result.data[0].url)).arrayBuffer());
  assert.ok(first.equals(Buffer.from(again.data[0].b64_json, 'base64')));
  const other = await client.images
    .generate({ model: MODEL, prompt: 'Three astronauts on the moon', num_inference_steps: 3 })
    .withResponse();
  assert.notEqual(other.response.headers.get('x-rng-seed'), seed, 'a fresh seed per request');
});

test('images.createVariation: image-to-image of the upload, n images, b64 or url', async () => {
  const picture = await makeImage(64, 64, 'png', { r: 200, g: 150, b: 20 });
  const result = await client.images.createVariation({
    model: MODEL,
    image: await toFile(picture, 'input.png', { type: 'image/png' }),
    n: 2,
    response_format: 'b64_json',
    num_inference_steps: 4,
  });
  assert.equal(result.data.length, 2);
  for (const item of result.data) assert.deepEqual([magic(item.b64_json).width, magic(item.b64_json).height], [64, 64]);
  assert.equal(result.usage.input_tokens_details.image_tokens, 16);
  const linked = await new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 }).images.createVariation({
    image: await toFile(picture, 'input.png'),
    response_format: 'url',
    num_inference_steps: 2,
  });
  assert.equal((await fetch(linked.data[0].url)).status, 200);
});

test('a client that disconnects cancels its generation: the engine stops within one step and the slot is free at once', async () => {
  const cancelledLines = () => requestLines(server.output()).filter((l) => l.cancelled === 'client');
  for (const stream of [false, true]) {
    const logged = cancelledLines().length;
    const before = await metric(server.url, 'ov_diffusion_denoising_steps_total', { model: MODEL });
    const controller = new AbortController();
    if (stream) {
      // Mid-stream: the first partial image has arrived, then the client goes away.
      const events = await client.images.generate(
        { model: MODEL, prompt: 'cancel me', num_inference_steps: 100, stream, partial_images: 3 },
        { signal: controller.signal },
      );
      const seen = [];
      for await (const event of events) {
        seen.push(event.type);
        if (event.type === 'image_generation.partial_image') controller.abort();
      }
      assert.deepEqual(seen, ['image_generation.partial_image'], 'the SDK ends the iteration at the abort');
    } else {
      const request = client.images.generate(
        { model: MODEL, prompt: 'cancel me', num_inference_steps: 100 },
        { signal: controller.signal },
      );
      await until(async () => (await metric(server.url, 'ov_diffusion_denoising_steps_total', { model: MODEL })) >= before + 3);
      controller.abort();
      await assert.rejects(request, (e) => e instanceof APIUserAbortError);
    }
    await until(() => cancelledLines().length > logged);
    const line = cancelledLines().at(-1);
    assert.equal(line.stream, stream ? 'true' : undefined);
    assert.equal(line.status, '499');
    assert.ok(Number(line.steps_after_cancel) <= 1, `the engine ran ${line.steps_after_cancel} steps after the disconnect`);
    assert.ok(Number(line.steps_run) < 60, `${line.steps_run} steps ran`);
    const stopped = await metric(server.url, 'ov_diffusion_denoising_steps_total', { model: MODEL });
    await sleep(150);
    assert.equal(await metric(server.url, 'ov_diffusion_denoising_steps_total', { model: MODEL }), stopped, 'no more steps run');
    assert.equal(await metric(server.url, 'ov_diffusion_running_jobs', { model: MODEL }), 0);
    const { response } = await client.images.generate({ model: MODEL, prompt: 'next', num_inference_steps: 1 }).withResponse();
    let next;
    await until(() => (next = requestLines(server.output()).find((l) => l.id === response.headers.get('x-request-id'))));
    assert.equal(next.queue_ms, '0', 'the slot was free');
  }
});

test('queue full: beyond --max_concurrency 1 and --max_queue_size 1 the client gets RateLimitError with Retry-After', async () => {
  const controller = new AbortController();
  const long = [0, 1].map(() =>
    client.images.generate({ model: MODEL, prompt: 'long', num_inference_steps: 100 }, { signal: controller.signal }).catch((e) => e),
  );
  await until(
    async () =>
      (await metric(server.url, 'ov_diffusion_queue_depth', { model: MODEL })) === 1 &&
      (await metric(server.url, 'ov_diffusion_running_jobs', { model: MODEL })) === 1,
  );
  for (const stream of [false, true]) {
    const error = await client.images.generate({ model: MODEL, prompt: 'one too many', num_inference_steps: 2, stream }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(error instanceof RateLimitError, String(error));
    assert.equal(error.status, 429);
    assert.equal(error.code, 'queue_full');
    assert.ok(Number(error.headers.get('retry-after')) >= 1);
  }
  controller.abort();
  for (const result of await Promise.all(long)) assert.ok(result instanceof APIUserAbortError);
  await until(
    async () =>
      (await metric(server.url, 'ov_diffusion_running_jobs', { model: MODEL })) === 0 &&
      (await metric(server.url, 'ov_diffusion_queue_depth', { model: MODEL })) === 0,
  );
});

test('/metrics changes after requests: requests by route and status, steps, generation time, errors', async () => {
  const labels = { route: '/images/generations', status: '200' };
  const before = {
    ok: await metric(server.url, 'ov_diffusion_http_requests_total', labels),
    bad: await metric(server.url, 'ov_diffusion_errors_total', { code: 'invalid_value' }),
    steps: await metric(server.url, 'ov_diffusion_step_duration_seconds_count', { model: MODEL }),
    generations: await metric(server.url, 'ov_diffusion_generation_duration_seconds_count', { model: MODEL }),
  };
  await client.images.generate({ model: MODEL, prompt: 'x', num_inference_steps: 4, scheduler: 'EULER_DISCRETE' });
  await assert.rejects(client.images.generate({ model: MODEL, prompt: 'x', size: '64x-64' }));
  assert.equal(await metric(server.url, 'ov_diffusion_http_requests_total', labels), before.ok + 1);
  assert.equal(await metric(server.url, 'ov_diffusion_errors_total', { code: 'invalid_value' }), before.bad + 1);
  assert.equal(await metric(server.url, 'ov_diffusion_step_duration_seconds_count', { model: MODEL }), before.steps + 4);
  assert.equal(await metric(server.url, 'ov_diffusion_generation_duration_seconds_count', { model: MODEL }), before.generations + 1);
  assert.ok((await metric(server.url, 'ov_diffusion_process_resident_memory_bytes')) > 0, 'process metrics');
});

test('SIGTERM with a request in flight: it finishes, nothing new is accepted, exit 0; past the grace time it is cancelled', async () => {
  const graceful = await startCli(['--model_name', MODEL, '--model_path', fixture('sd15'), '--shutdown_timeout', '20']);
  const open = new OpenAI({ baseURL: `${graceful.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const inFlight = open.images.generate({ model: MODEL, prompt: 'finish me', num_inference_steps: 40 });
  await until(async () => (await metric(graceful.url, 'ov_diffusion_denoising_steps_total')) >= 2);
  const exited = new Promise((resolve) => graceful.child.once('exit', (code, signal) => resolve({ code, signal })));
  graceful.child.kill('SIGTERM');
  await sleep(50);
  await assert.rejects(
    open.images.generate({ model: MODEL, prompt: 'too late', num_inference_steps: 1 }),
    (e) => e instanceof APIConnectionError,
  );
  const result = await inFlight;
  assert.equal(magic(result.data[0].b64_json).format, 'png');
  assert.deepEqual(await exited, { code: 0, signal: null });
  assert.match(graceful.output(), /SIGTERM: shutting down/);
  assert.match(graceful.output(), /\]\[info\] stopped/);

  const impatient = await startCli(['--model_name', MODEL, '--model_path', fixture('sd15'), '--shutdown_timeout', '0.2']);
  const client2 = new OpenAI({ baseURL: `${impatient.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const doomed = client2.images.generate({ model: MODEL, prompt: 'cancel me', num_inference_steps: 100 }).then(
    () => undefined,
    (e) => e,
  );
  await until(async () => (await metric(impatient.url, 'ov_diffusion_denoising_steps_total')) >= 2);
  const started = Date.now();
  const gone = new Promise((resolve) => impatient.child.once('exit', (code) => resolve(code)));
  impatient.child.kill('SIGTERM');
  const error = await doomed;
  assert.ok(error instanceof InternalServerError && error.status === 503 && error.code === 'shutting_down', String(error));
  assert.equal(await gone, 0);
  assert.ok(Date.now() - started < 5000, `exited after ${Date.now() - started} ms`);
  assert.match(impatient.output(), /cancelled 1 request/);
});
