'use strict';
// Background jobs against the real server process and engine (the tiny sd15 fixture): a job's images are the
// synchronous call's pixels for the same seed (every index, in png and webp), and DELETE stops a running generation
// within a step while the queued job behind it then runs.
const test = require('node:test');
const assert = require('node:assert/strict');
const sharp = require('sharp');
const { fixture } = require('./helpers/paths');
const { startCli, parseSse } = require('./helpers/server-http');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let server;

test.before(async () => {
  server = await startCli(['--model_name', 'sd15', '--model_path', fixture('sd15'), '--max_concurrency', '1']);
});

test.after(async () => {
  await server?.stop();
});

async function post(body) {
  const res = await fetch(`${server.url}/v3/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

async function job(id) {
  return (await fetch(`${server.url}/v3/images/jobs/${id}`)).json();
}

async function until(condition, ms = 60000) {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${condition}`);
    await sleep(10);
  }
}

const pixels = async (bytes) => (await sharp(bytes).raw().toBuffer({ resolveWithObject: true })).data;

test('a background job completes and its content has the pixels of the synchronous call with the same seed', async () => {
  const fields = { model: 'sd15', prompt: 'a red fox in the snow', rng_seed: 409, num_inference_steps: 4, size: '64x64', n: 2 };
  const sync = await post(fields);
  assert.equal(sync.status, 200);
  assert.deepEqual(
    sync.json.data.map((d) => d.seed),
    [409, 409],
  );

  const created = await post({ ...fields, background: true });
  assert.equal(created.status, 202);
  assert.equal(created.json.seed, 409);
  const { id } = created.json;
  // The event stream follows it to the end.
  const events = parseSse(await (await fetch(`${server.url}/v3/images/jobs/${id}/events`)).text()).events;
  assert.equal(events.at(-1).event, 'image_job.completed');
  assert.ok(events.filter((e) => e.event === 'image_job.step').length >= 4);
  const done = await job(id);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress, 100);
  assert.ok(done.timings.generation_ms > 0);

  for (const index of [0, 1]) {
    const expected = await pixels(Buffer.from(sync.json.data[index].b64_json, 'base64'));
    const png = await fetch(`${server.url}/v3/images/jobs/${id}/content?index=${index}`);
    assert.equal(png.headers.get('content-type'), 'image/png');
    const actual = await pixels(Buffer.from(await png.arrayBuffer()));
    assert.ok(actual.equals(expected), `index ${index}: the job's pixels equal the synchronous call's`);
    // The two images of the batch differ (the comparison is not trivially true).
    if (index === 1) assert.ok(!actual.equals(await pixels(Buffer.from(sync.json.data[0].b64_json, 'base64'))));
    const webp = await fetch(`${server.url}/v3/images/jobs/${id}/content?index=${index}&format=webp`);
    assert.equal((await sharp(Buffer.from(await webp.arrayBuffer())).metadata()).format, 'webp');
  }
});

test('DELETE stops a running job within a step; the queued job behind it then runs', async () => {
  const a = (await post({ model: 'sd15', prompt: 'slow', num_inference_steps: 100, size: '64x64', background: true })).json;
  await until(async () => (await job(a.id)).step >= 1);
  const b = (await post({ model: 'sd15', prompt: 'next', num_inference_steps: 2, size: '64x64', background: true })).json;
  assert.equal(b.status, 'queued');
  assert.equal(b.queue_position, 1);
  const res = await fetch(`${server.url}/v3/images/jobs/${a.id}`, { method: 'DELETE' });
  const cancelled = await res.json();
  assert.equal(cancelled.status, 'cancelled');
  assert.ok(cancelled.step < 100, `stopped at step ${cancelled.step}`);
  await until(async () => (await job(b.id)).status === 'completed');
});
