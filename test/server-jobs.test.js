'use strict';
// Background jobs (background: true) against fake models: the job object and its states (queued -> in_progress ->
// completed / failed / cancelled), queue positions, the event stream and its Last-Event-ID replay, the content in
// three formats, TTL and count bounds, the queue limits, auth, listing, /metrics and the drain; and the small
// OpenAI-shape fields that came with them (quality, background strings, a seed per data[] entry).
const test = require('node:test');
const assert = require('node:assert/strict');
const sharp = require('sharp');
const { buildModelSettings } = require('../dist/server/settings');
const { QUALITY_STEPS } = require('../dist/server/fields');
const { OvDiffusionError } = require('..');
const { fakeModel, makeImage } = require('./helpers/server-fakes');
const { withApp, parseSse } = require('./helpers/server-http');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${condition}`);
    await sleep(3);
  }
}

const one = (model = fakeModel(), flags = {}) => [{ name: 'sd', model, settings: buildModelSettings(flags) }];

async function call(url, { method = 'GET', body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const res = await fetch(url, init);
  const bytes = Buffer.from(await res.arrayBuffer());
  let json;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, bytes, text: bytes.toString('utf8'), json };
}

const submit = (url, fields, headers) =>
  call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'a fox', background: true, ...fields }, headers });

function assertError(res, status, code, param) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(Object.keys(res.json.error).sort(), ['code', 'message', 'param', 'type']);
  if (code !== undefined) assert.equal(res.json.error.code, code, res.text);
  if (param !== undefined) assert.equal(res.json.error.param, param, res.text);
}

/** Polls the job until its status is one of `statuses`. */
async function waitFor(url, id, ...statuses) {
  let job;
  await until(async () => {
    job = (await call(`${url}/v3/images/jobs/${id}`)).json;
    return statuses.includes(job.status);
  });
  return job;
}

/** Reads a whole event stream (it ends after the job's last event). */
async function events(url, id, headers = {}) {
  const res = await fetch(`${url}/v3/images/jobs/${id}/events`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const text = await res.text();
  const parsed = parseSse(text).events;
  const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  assert.equal(ids.length, parsed.length, 'every event has an id');
  return parsed.map((e, i) => ({ id: ids[i], type: e.event, data: e.data }));
}

test('a background job: 202 with the job object, queued -> in_progress -> completed, content in png, jpeg and webp', async () => {
  const model = fakeModel({ stepMs: 15 });
  await withApp(one(model), async (url) => {
    const res = await submit(url, { num_inference_steps: 4, rng_seed: 7, size: '64x48', n: 2 });
    assert.equal(res.status, 202, res.text);
    const job = res.json;
    assert.match(job.id, /^imgjob_[0-9a-f]{24}$/);
    assert.equal(res.headers.get('location'), `/v3/images/jobs/${job.id}`);
    assert.equal(res.headers.get('x-rng-seed'), '7');
    assert.equal(job.object, 'image.job');
    assert.equal(job.model, 'sd');
    assert.ok(['queued', 'in_progress'].includes(job.status));
    assert.equal(job.seed, 7);
    assert.equal(job.n, 2);
    assert.equal(job.total_steps, 4);
    assert.equal(job.error, null);
    assert.equal(job.completed_at, null);
    assert.ok(Math.abs(job.created_at - Date.now() / 1000) < 5);

    const done = await waitFor(url, job.id, 'completed');
    assert.equal(done.progress, 100);
    assert.equal(done.step, 4);
    assert.equal(done.size, '64x48');
    assert.ok(done.completed_at >= done.created_at && done.expires_at === done.completed_at + 3600);
    assert.ok(done.timings.total_ms >= 4 * 15 && done.timings.generation_ms >= 4 * 15, JSON.stringify(done.timings));
    assert.equal(done.usage.output_tokens, 2 * 4 * 3);
    // The same job under /v1 and /v3/v1.
    assert.equal((await call(`${url}/v1/images/jobs/${job.id}`)).json.status, 'completed');
    assert.equal((await call(`${url}/v3/v1/images/jobs/${job.id}`)).json.id, job.id);

    const kinds = { png: 'png', jpeg: 'jpeg', webp: 'webp' };
    for (const [format, sharpFormat] of Object.entries(kinds)) {
      for (const index of [0, 1]) {
        const content = await call(`${url}/v3/images/jobs/${job.id}/content?index=${index}&format=${format}`);
        assert.equal(content.status, 200, content.text);
        assert.equal(content.headers.get('content-type'), `image/${format}`);
        assert.equal(content.headers.get('x-rng-seed'), '7');
        const meta = await sharp(content.bytes).metadata();
        assert.deepEqual([meta.format, meta.width, meta.height], [sharpFormat, 64, 48]);
        const { data } = await sharp(content.bytes).raw().toBuffer({ resolveWithObject: true });
        // The fake's images are flat gray 40 + 40 * index (lossy formats within a few levels).
        assert.ok(Math.abs(data[0] - (40 + 40 * index)) <= (format === 'png' ? 0 : 3), `${format} ${index}: ${data[0]}`);
      }
    }
    // Without format: the request's output_format, the stored bytes.
    const plain = await call(`${url}/v3/images/jobs/${job.id}/content`);
    assert.equal(plain.headers.get('content-type'), 'image/png');
    assert.equal((await sharp(plain.bytes).metadata()).width, 64);
  });
});

test('job events: queued, in_progress, every step, partial images, completed; numbered and replayed from Last-Event-ID', async () => {
  const model = fakeModel({ stepMs: 10 });
  await withApp(one(model), async (url) => {
    const { json: job } = await submit(url, { num_inference_steps: 5, partial_images: 2 });
    // Live: the stream follows the job as it runs, then ends.
    const all = await events(url, job.id);
    const types = all.map((e) => e.type);
    assert.deepEqual(
      all.map((e) => e.id),
      all.map((_, i) => i + 1),
    );
    assert.equal(types[0], 'image_job.queued');
    assert.equal(types[1], 'image_job.in_progress');
    assert.equal(types.at(-1), 'image_job.completed');
    const steps = all.filter((e) => e.type === 'image_job.step');
    assert.deepEqual(
      steps.map((e) => e.data.step),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      steps.map((e) => e.data.job.progress),
      [20, 40, 60, 80, 99],
    );
    const partials = all.filter((e) => e.type === 'image_job.partial_image');
    assert.deepEqual(
      partials.map((e) => e.data.partial_image_index),
      [0, 1],
    );
    for (const p of partials) assert.equal((await sharp(Buffer.from(p.data.b64_json, 'base64')).metadata()).format, 'png');
    const completed = all.at(-1).data;
    assert.equal(completed.job.status, 'completed');
    assert.equal(completed.job.progress, 100);
    for (const e of all) assert.equal(e.data.job.id, job.id);

    // A reconnect with Last-Event-ID gets what came after it, with the same ids; past the end, nothing.
    const rest = await events(url, job.id, { 'Last-Event-ID': '3' });
    assert.deepEqual(rest, all.slice(3));
    assert.deepEqual(await events(url, job.id, { 'Last-Event-ID': String(all.length) }), []);
    assert.deepEqual(await events(url, job.id, { 'Last-Event-ID': '9999' }), [], 'an id ahead of the job: nothing sent twice');
    // The query form, for clients that cannot set headers.
    const viaQuery = parseSse(await (await fetch(`${url}/v3/images/jobs/${job.id}/events?last_event_id=${all.length - 1}`)).text()).events;
    assert.deepEqual(
      viaQuery.map((e) => e.event),
      ['image_job.completed'],
    );
    assertError(
      await call(`${url}/v3/images/jobs/${job.id}/events`, { headers: { 'Last-Event-ID': 'x1' } }),
      400,
      'invalid_value',
      'Last-Event-ID',
    );
  });
});

test('with n > 1, each preview and image has its image_index', async () => {
  await withApp(one(fakeModel({ stepMs: 5 })), async (url) => {
    const { json: job } = await submit(url, { num_inference_steps: 4, partial_images: 1, n: 2 });
    const partials = (await events(url, job.id)).filter((e) => e.type === 'image_job.partial_image');
    assert.deepEqual(
      partials.map((e) => [e.data.partial_image_index, e.data.image_index]),
      [
        [0, 0],
        [0, 1],
      ],
    );
  });
});

test('a reconnect in the middle of a job replays what it missed, then follows live', async () => {
  const model = fakeModel({ stepMs: 25 });
  await withApp(one(model), async (url) => {
    const { json: job } = await submit(url, { num_inference_steps: 8 });
    // First connection: read until the second step, then drop it; the job goes on without it.
    const controller = new AbortController();
    const res = await fetch(`${url}/v3/images/jobs/${job.id}/events`, { signal: controller.signal });
    const reader = res.body.getReader();
    let text = '';
    while (!/"step":2/.test(text)) text += Buffer.from((await reader.read()).value).toString('utf8');
    controller.abort();
    const seen = parseSse(text.slice(0, text.lastIndexOf('\n\n') + 2)).events;
    const lastId = Math.max(...[...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])));
    assert.equal(seen.length, lastId);
    await sleep(60); // steps happen while nobody listens
    const rest = await events(url, job.id, { 'Last-Event-ID': String(lastId) });
    assert.equal(rest[0].id, lastId + 1, 'nothing lost, nothing repeated');
    assert.equal(rest.at(-1).type, 'image_job.completed');
    const steps = [...seen, ...rest.map((e) => ({ event: e.type, data: e.data }))].filter((e) => e.event === 'image_job.step');
    assert.deepEqual(
      steps.map((e) => e.data.step),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
  });
});

test('queue positions; DELETE cancels a queued job (the next moves up) and a running one (the next starts at once)', async () => {
  const model = fakeModel({ stepMs: 20, maxConcurrency: 1 });
  await withApp(one(model, { max_concurrency: '1' }), async (url) => {
    const a = (await submit(url, { num_inference_steps: 100 })).json;
    await waitFor(url, a.id, 'in_progress');
    const b = (await submit(url, { num_inference_steps: 3 })).json;
    const c = (await submit(url, { num_inference_steps: 3 })).json;
    assert.equal(b.status, 'queued');
    assert.equal(b.queue_position, 1);
    assert.equal(c.queue_position, 2);
    assert.equal((await call(`${url}/v3/images/jobs`)).json.data.find((j) => j.id === c.id).queue_position, 2);

    // Cancel the queued b: c moves up to 1.
    const cancelled = await call(`${url}/v3/images/jobs/${b.id}`, { method: 'DELETE' });
    assert.equal(cancelled.status, 200, cancelled.text);
    assert.equal(cancelled.json.status, 'cancelled');
    assert.equal(cancelled.json.error, null);
    assert.equal(cancelled.json.step, 0);
    assert.equal((await call(`${url}/v3/images/jobs/${c.id}`)).json.queue_position, 1);

    // Cancel the running a (100 steps of 20 ms): it stops at its next step and c starts at once.
    const started = Date.now();
    const stopped = await call(`${url}/v3/images/jobs/${a.id}`, { method: 'DELETE' });
    assert.equal(stopped.json.status, 'cancelled');
    assert.ok(stopped.json.step < 100);
    const cDone = await waitFor(url, c.id, 'completed');
    assert.ok(Date.now() - started < 1500, `c finished ${Date.now() - started} ms after the cancel`);
    assert.equal(cDone.step, 3);

    // c's events show its queue positions 2 -> 1, then it ran.
    const cEvents = await events(url, c.id);
    assert.deepEqual(
      cEvents.filter((e) => /queued|queue_position/.test(e.type)).map((e) => e.data.job.queue_position),
      [2, 1],
    );
    assert.deepEqual(
      cEvents.slice(-1).map((e) => e.type),
      ['image_job.completed'],
    );
    // b's events end with cancelled; its content is a 409.
    assert.equal((await events(url, b.id)).at(-1).type, 'image_job.cancelled');
    assertError(await call(`${url}/v3/images/jobs/${b.id}/content`), 409, 'job_not_completed');
    // DELETE on a finished job forgets it.
    const gone = await call(`${url}/v3/images/jobs/${c.id}`, { method: 'DELETE' });
    assert.deepEqual(gone.json, { id: c.id, object: 'image.job.deleted', deleted: true });
    assertError(await call(`${url}/v3/images/jobs/${c.id}`), 404, 'job_not_found', 'id');
  });
});

test('a job that fails while running: status failed with the error, a failed event; the content is a 409', async () => {
  const model = fakeModel({ stepMs: 5 });
  const text2image = model.text2image;
  model.text2image = (prompt, options) =>
    text2image(prompt, {
      ...options,
      onStep: (progress) => {
        options.onStep(progress);
        if (progress.step === 1) throw new OvDiffusionError('ERR_INFERENCE', 'the device lost its mind');
      },
    });
  await withApp(one(model), async (url) => {
    const { json: job } = await submit(url, { num_inference_steps: 5 });
    const failed = await waitFor(url, job.id, 'failed');
    assert.equal(failed.error.code, 'err_inference');
    assert.match(failed.error.message, /the device lost its mind/);
    assert.equal(failed.step, 2);
    assert.ok(failed.completed_at);
    const all = await events(url, job.id);
    assert.equal(all.at(-1).type, 'image_job.failed');
    assert.equal(all.at(-1).data.job.error.code, 'err_inference');
    assertError(await call(`${url}/v3/images/jobs/${job.id}/content`), 409, 'job_not_completed');
  });
});

test('refused before queueing: the POST answers the error a synchronous request gets, and no job is kept', async () => {
  const model = fakeModel({ stepMs: 30, maxConcurrency: 1, maxQueue: 1 });
  await withApp(one(model, { max_concurrency: '1', max_queue_size: '1' }), async (url) => {
    assertError(await submit(url, { strength: 0.5 }), 400, 'invalid_value', 'strength');
    assertError(await submit(url, { size: '5000x64' }), 400, 'size_too_large', 'size');
    assertError(await submit(url, { stream: true }), 400, 'unsupported_value', 'stream');
    assertError(await submit(url, { response_format: 'url' }), 400, 'unsupported_value', 'response_format');
    assert.equal((await call(`${url}/v3/images/jobs`)).json.data.length, 0);

    // One runs, one waits: the queue (1) is full for jobs and synchronous requests alike.
    const a = (await submit(url, { num_inference_steps: 20 })).json;
    const b = (await submit(url, { num_inference_steps: 1 })).json;
    assert.equal(b.status, 'queued');
    const full = await submit(url, { num_inference_steps: 1 });
    assertError(full, 429, 'queue_full');
    assert.match(full.json.error.message, /--max_queue_size/);
    assert.ok(Number(full.headers.get('retry-after')) >= 1);
    assertError(
      await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', num_inference_steps: 1 } }),
      429,
      'queue_full',
    );
    assert.equal((await call(`${url}/v3/images/jobs`)).json.data.length, 2);
    assert.equal(model.maxRunning, 1, 'the model concurrency holds for jobs');
    await call(`${url}/v3/images/jobs/${a.id}`, { method: 'DELETE' });
    await waitFor(url, b.id, 'completed');
  });
});

test('jobs outlive their client; a synchronous request waits behind them in the same queue', async () => {
  const model = fakeModel({ stepMs: 10, maxConcurrency: 1 });
  await withApp(one(model, { max_concurrency: '1' }), async (url) => {
    const job = (await submit(url, { num_inference_steps: 6 })).json;
    // An events client that leaves at once.
    const controller = new AbortController();
    await fetch(`${url}/v3/images/jobs/${job.id}/events`, { signal: controller.signal });
    controller.abort();
    const sync = await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', num_inference_steps: 1 } });
    assert.equal(sync.status, 200);
    const done = (await call(`${url}/v3/images/jobs/${job.id}`)).json;
    assert.equal(done.status, 'completed', 'the job ran first and finished before the synchronous request');
  });
});

test('finished jobs expire after the TTL; the count is bounded (oldest finished job evicted, 429 when all are active)', async () => {
  const model = fakeModel({ stepMs: 5 });
  await withApp(
    one(model),
    async (url, app) => {
      const first = (await submit(url, { num_inference_steps: 1 })).json;
      const done = await waitFor(url, first.id, 'completed');
      assert.equal(done.expires_at, done.completed_at + 1);
      await sleep(400);
      assert.equal((await call(`${url}/v3/images/jobs/${first.id}`)).status, 200, 'kept until its TTL');
      await until(async () => (await call(`${url}/v3/images/jobs/${first.id}`)).status === 404, 3000);
      assertError(await call(`${url}/v3/images/jobs/${first.id}/content`), 404, 'job_not_found');
      assert.equal(app.jobs.counts().completed, 0);
    },
    { jobs: { ttlSeconds: 0.5 } },
  );
  await withApp(
    one(fakeModel({ stepMs: 20 })),
    async (url) => {
      const a = (await submit(url, { num_inference_steps: 1 })).json;
      await waitFor(url, a.id, 'completed');
      const b = (await submit(url, { num_inference_steps: 50 })).json;
      const c = (await submit(url, { num_inference_steps: 50 })).json; // evicts a, the oldest finished job
      assertError(await call(`${url}/v3/images/jobs/${a.id}`), 404, 'job_not_found');
      const refused = await submit(url, { num_inference_steps: 1 });
      assertError(refused, 429, 'too_many_jobs');
      assert.match(refused.json.error.message, /--max_jobs 2/);
      assert.deepEqual(
        (await call(`${url}/v3/images/jobs`)).json.data.map((j) => j.id),
        [c.id, b.id],
      );
    },
    { jobs: { maxJobs: 2 } },
  );
  await withApp(one(), async (url) => assertError(await submit(url, {}), 400, 'unsupported_value', 'background'), { jobs: { maxJobs: 0 } });
});

test('GET /images/jobs: newest first, limit and after, asc order; bad values are 400s', async () => {
  await withApp(one(fakeModel()), async (url) => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await submit(url, { num_inference_steps: 1 })).json.id);
    const page1 = (await call(`${url}/v3/images/jobs?limit=2`)).json;
    assert.equal(page1.object, 'list');
    assert.deepEqual(
      page1.data.map((j) => j.id),
      [ids[4], ids[3]],
    );
    assert.deepEqual([page1.first_id, page1.last_id, page1.has_more], [ids[4], ids[3], true]);
    const page2 = (await call(`${url}/v3/images/jobs?limit=2&after=${page1.last_id}`)).json;
    assert.deepEqual(
      page2.data.map((j) => j.id),
      [ids[2], ids[1]],
    );
    const page3 = (await call(`${url}/v1/images/jobs?limit=2&after=${page2.last_id}`)).json;
    assert.deepEqual([page3.data.map((j) => j.id), page3.has_more], [[ids[0]], false]);
    const asc = (await call(`${url}/v3/images/jobs?order=asc&limit=3`)).json;
    assert.deepEqual(
      asc.data.map((j) => j.id),
      ids.slice(0, 3),
    );
    assert.equal((await call(`${url}/v3/images/jobs`)).json.data.length, 5);
    assertError(await call(`${url}/v3/images/jobs?limit=0`), 400, 'invalid_value', 'limit');
    assertError(await call(`${url}/v3/images/jobs?limit=101`), 400, 'invalid_value', 'limit');
    assertError(await call(`${url}/v3/images/jobs?limit=-1`), 400, 'invalid_value', 'limit');
    assertError(await call(`${url}/v3/images/jobs?order=sideways`), 400, 'invalid_value', 'order');
    assertError(await call(`${url}/v3/images/jobs?after=imgjob_nope`), 400, 'job_not_found', 'after');
    assertError(await call(`${url}/v3/images/jobs?limit=1&limit=2`), 400, 'invalid_value', 'limit');
  });
});

test('unknown job ids are OpenAI-shaped 404s on every route; wrong methods 405; bad content queries 400/409', async () => {
  const model = fakeModel({ stepMs: 30 });
  await withApp(one(model), async (url) => {
    for (const [method, path] of [
      ['GET', ''],
      ['GET', '/events'],
      ['GET', '/content'],
      ['DELETE', ''],
    ])
      assertError(await call(`${url}/v3/images/jobs/imgjob_missing${path}`, { method }), 404, 'job_not_found', 'id');
    assertError(await call(`${url}/v3/images/jobs/${'x'.repeat(5000)}`), 404, 'job_not_found');
    assertError(await call(`${url}/v3/images/jobs/imgjob_x`, { method: 'POST', body: {} }), 405, 'method_not_allowed');
    assertError(await call(`${url}/v3/images/jobs`, { method: 'DELETE' }), 405, 'method_not_allowed');

    const { json: job } = await submit(url, { num_inference_steps: 4 });
    assertError(await call(`${url}/v3/images/jobs/${job.id}/content`), 409, 'job_not_ready');
    await waitFor(url, job.id, 'completed');
    assertError(await call(`${url}/v3/images/jobs/${job.id}/content?index=1`), 400, 'invalid_value', 'index');
    assertError(await call(`${url}/v3/images/jobs/${job.id}/content?index=-1`), 400, 'invalid_value', 'index');
    assertError(await call(`${url}/v3/images/jobs/${job.id}/content?format=gif`), 400, 'unsupported_value', 'format');
  });
});

test('auth: with an API key, every jobs route needs it', async () => {
  const key = { authorization: 'Bearer k1' };
  await withApp(
    one(fakeModel()),
    async (url) => {
      assertError(await submit(url, {}), 401, 'invalid_api_key');
      const { json: job, status } = await submit(url, { num_inference_steps: 1 }, key);
      assert.equal(status, 202);
      for (const path of ['', `/${job.id}`, `/${job.id}/events`, `/${job.id}/content`])
        assertError(await call(`${url}/v3/images/jobs${path}`), 401, 'invalid_api_key');
      assertError(await call(`${url}/v1/images/jobs/${job.id}`, { method: 'DELETE' }), 401, 'invalid_api_key');
      assert.equal((await call(`${url}/v3/images/jobs/${job.id}`, { headers: key })).status, 200);
    },
    { apiKey: 'k1' },
  );
});

test('edits and variations run as jobs too (multipart background=true); background strings are the transparency field', async () => {
  const model = fakeModel({ stepMs: 2 });
  const png = await makeImage(64, 64);
  const form = (fields) => {
    const body = new FormData();
    for (const [k, v] of Object.entries(fields)) body.append(k, v);
    body.append('image', new Blob([png]), 'a.png');
    return body;
  };
  await withApp(one(model), async (url) => {
    const edit = await call(`${url}/v3/images/edits`, {
      method: 'POST',
      body: form({ prompt: 'p', background: 'true', num_inference_steps: '2' }),
    });
    assert.equal(edit.status, 202, edit.text);
    assert.equal(edit.json.endpoint, 'edits');
    assert.equal(edit.json.task, 'image2image');
    assert.equal((await waitFor(url, edit.json.id, 'completed')).status, 'completed');
    const variation = await call(`${url}/v1/images/variations`, {
      method: 'POST',
      body: form({ background: 'true', num_inference_steps: '2' }),
    });
    assert.equal(variation.status, 202, variation.text);
    assert.equal(variation.json.endpoint, 'variations');
    await waitFor(url, variation.json.id, 'completed');

    // Strings: OpenAI's transparency choice. auto/opaque answer synchronously; transparent is a clear 400.
    for (const background of ['auto', 'opaque', false]) {
      const res = await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', background, num_inference_steps: 1 } });
      assert.equal(res.status, 200, `${background}: ${res.text}`);
      assert.equal(res.json.background, 'opaque');
    }
    const transparent = await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', background: 'transparent' } });
    assertError(transparent, 400, 'unsupported_value', 'background');
    assert.match(transparent.json.error.message, /transparent is not supported.*opaque/);
    assertError(
      await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', background: 'true' } }),
      400,
      'unsupported_value',
      'background',
    );
    assertError(
      await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', background: 1 } }),
      400,
      'invalid_value',
      'background',
    );
    const mp = await call(`${url}/v3/images/edits`, { method: 'POST', body: form({ prompt: 'p', background: 'transparent' }) });
    assertError(mp, 400, 'unsupported_value', 'background');
  });
});

test('quality: low/medium/high pick the steps of the model family, auto the server default; num_inference_steps wins', async () => {
  const families = [
    ['FakePipeline', 'SD 1.x/2.x, SDXL (and any other)'],
    ['StableDiffusionXLPipeline', 'SD 1.x/2.x, SDXL (and any other)'],
    ['LatentConsistencyModelPipeline', 'LCM'],
    ['StableDiffusion3Pipeline', 'SD3, FLUX'],
    ['FluxPipeline', 'SD3, FLUX'],
    ['FluxFillPipeline', 'FLUX Fill'],
  ];
  for (const [className, family] of families) {
    const model = fakeModel({ className });
    const row = QUALITY_STEPS.find((r) => r.family === family);
    await withApp(one(model, { default_num_inference_steps: '33' }), async (url) => {
      for (const quality of ['low', 'medium', 'high', 'auto', 'standard', 'hd']) {
        const res = await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', quality } });
        assert.equal(res.status, 200, res.text);
      }
      const steps = model.calls.map((c) => c.options.numInferenceSteps);
      assert.deepEqual(steps, [row.low, row.medium, row.high, 33, 33, row.high], className);
    });
  }
  const model = fakeModel();
  await withApp(one(model, { max_num_inference_steps: '20' }), async (url) => {
    const high = await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', quality: 'high' } });
    assert.equal(high.json.quality, 'high');
    await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', quality: 'low', num_inference_steps: 3 } });
    assert.deepEqual(
      model.calls.map((c) => c.options.numInferenceSteps),
      [20, 3],
      'capped at the maximum; explicit steps win',
    );
    assertError(
      await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', quality: 'ultra' } }),
      400,
      'unsupported_value',
      'quality',
    );
    assertError(
      await call(`${url}/v3/images/generations`, { method: 'POST', body: { prompt: 'x', quality: '__proto__' } }),
      400,
      'unsupported_value',
      'quality',
    );
    // A job reports the quality and, once it knows the model, the steps it chose.
    const job = (await submit(url, { quality: 'medium' })).json;
    assert.equal(job.quality, 'medium');
    assert.equal((await waitFor(url, job.id, 'completed')).total_steps, 20);
  });
});

test('data[] entries carry the seed: the images of one call share it (url and b64_json, and the stream)', async () => {
  await withApp(one(fakeModel()), async (url) => {
    const res = await call(`${url}/v3/images/generations`, {
      method: 'POST',
      body: { prompt: 'x', n: 3, rng_seed: 99, num_inference_steps: 1 },
    });
    assert.deepEqual(
      res.json.data.map((d) => d.seed),
      [99, 99, 99],
    );
    const random = await call(`${url}/v3/images/generations`, {
      method: 'POST',
      body: { prompt: 'x', n: 2, num_inference_steps: 1, response_format: 'url' },
    });
    const seed = Number(random.headers.get('x-rng-seed'));
    assert.deepEqual(
      random.json.data.map((d) => [typeof d.url, d.seed]),
      [
        ['string', seed],
        ['string', seed],
      ],
    );
    const stream = await fetch(`${url}/v3/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'x', stream: true, rng_seed: 5, num_inference_steps: 1 }),
    });
    const completed = parseSse(await stream.text()).events.find((e) => e.event === 'image_generation.completed');
    assert.equal(completed.data.seed, 5);
  });
});

test('/metrics: jobs by status and finished jobs by final status', async () => {
  const model = fakeModel({ stepMs: 20, maxConcurrency: 1 });
  await withApp(one(model, { max_concurrency: '1' }), async (url) => {
    const a = (await submit(url, { num_inference_steps: 50 })).json;
    await waitFor(url, a.id, 'in_progress');
    const b = (await submit(url, { num_inference_steps: 1 })).json;
    let text = await (await fetch(`${url}/metrics`)).text();
    assert.match(text, /^ov_diffusion_jobs\{status="in_progress"\} 1$/m);
    assert.match(text, /^ov_diffusion_jobs\{status="queued"\} 1$/m);
    await call(`${url}/v3/images/jobs/${a.id}`, { method: 'DELETE' });
    await waitFor(url, b.id, 'completed');
    text = await (await fetch(`${url}/metrics`)).text();
    assert.match(text, /^ov_diffusion_jobs\{status="completed"\} 1$/m);
    assert.match(text, /^ov_diffusion_jobs\{status="cancelled"\} 1$/m);
    assert.match(text, /^ov_diffusion_jobs_finished_total\{status="completed"\} 1$/m);
    assert.match(text, /^ov_diffusion_jobs_finished_total\{status="cancelled"\} 1$/m);
    assert.match(text, /^ov_diffusion_denoising_steps_total\{model="sd"\} [1-9]/m);
  });
});

test('drain: a running job gets the grace time, then fails with shutting_down; its event stream ends', async () => {
  const model = fakeModel({ stepMs: 20 });
  await withApp(one(model), async (url, app) => {
    const job = (await submit(url, { num_inference_steps: 100 })).json;
    await waitFor(url, job.id, 'in_progress');
    const stream = await fetch(`${url}/v3/images/jobs/${job.id}/events`); // connected (the headers came)
    assert.equal(await app.drain(60), 2, 'the job and its event stream');
    const last = parseSse(await stream.text()).events.at(-1);
    assert.equal(last.event, 'image_job.failed');
    assert.equal(last.data.job.error.code, 'shutting_down');
    assert.ok(model.stepsRun < 100);
  });
});

test('a job waits for its model to load (queued, no position), then runs', async () => {
  let resolve;
  const loading = new Promise((r) => {
    resolve = r;
  });
  await withApp([{ name: 'sd', model: loading, settings: buildModelSettings({}) }], async (url) => {
    const { status, json: job } = await submit(url, { num_inference_steps: 2 });
    assert.equal(status, 202);
    assert.equal(job.status, 'queued');
    assert.equal(job.queue_position, null);
    // Cancelling while the model loads works too.
    const other = (await submit(url, { num_inference_steps: 2 })).json;
    const cancelled = await call(`${url}/v3/images/jobs/${other.id}`, { method: 'DELETE' });
    assert.equal(cancelled.json.status, 'cancelled');
    resolve(fakeModel({ stepMs: 2 }));
    await waitFor(url, job.id, 'completed');
  });
  let fail;
  const broken = new Promise((_, r) => {
    fail = r;
  });
  await withApp([{ name: 'sd', model: broken, settings: buildModelSettings({}) }], async (url) => {
    const { json: job } = await submit(url, { num_inference_steps: 2 });
    fail(new Error('no weights'));
    const failed = await waitFor(url, job.id, 'failed');
    assert.equal(failed.error.code, 'model_unavailable');
  });
});
