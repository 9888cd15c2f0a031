'use strict';
// Bad input (the tables of test/helpers/bad-input.js): each case must get a prompt 4xx with an OpenAI-shaped error:
// never a 5xx, never a hang (per-case timeout), never an error-level log line. Valid requests must still work
// afterwards. The server is the real one (createApp + createHttpServer, short timeouts) on a fake model.
const test = require('node:test');
const assert = require('node:assert/strict');
const { makeImage } = require('./helpers/server-fakes');
const { head, multipart, send, sleep } = require('./helpers/raw-http');
const { AUTH, EDITS, allCases, assertOpenAiError, startServer, assertValidRequestsWork } = require('./helpers/bad-input');

test('bad input: every case of the tables gets a prompt OpenAI-shaped 4xx; no 5xx, hang or error log', async (t) => {
  const { cases, image } = await allCases();
  const counts = {};
  for (const c of cases) counts[c.group] = (counts[c.group] ?? 0) + 1;
  t.diagnostic(`${cases.length} cases: ${JSON.stringify(counts)}`);
  assert.ok(cases.length >= 200, `${cases.length} cases`);

  const server = await startServer();
  try {
    for (const c of cases) {
      await t.test(c.name, async () => {
        const res = await send(server.url, c.pieces, { timeoutMs: c.withinMs ? c.withinMs + 2000 : 8000 });
        assertOpenAiError(res, c);
      });
    }
    await assertValidRequestsWork(server.url, image);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /ov_diffusion_http_requests_total\{[^}]*status="5\d\d"/, 'no 5xx was answered');
    assert.doesNotMatch(metrics, /code="internal_error"/);
    const errors = server.lines.filter((line) => /\]\[error\]/.test(line));
    assert.deepEqual(errors, [], 'nothing was logged as an internal error');
    // The fake model ran only the valid requests: nothing bad reached the library.
    assert.equal(server.model.calls.length, 4);
  } finally {
    await server.close();
  }
});

test('a client that leaves mid-upload: 499 in the log and metrics, no error log, and the server goes on', async () => {
  const image = await makeImage(64, 64);
  const server = await startServer();
  try {
    const { body, contentType } = multipart([
      { name: 'prompt', value: 'p' },
      { name: 'image', filename: 'a.png', data: image },
    ]);
    for (const cut of [10, 150, body.length - 10]) {
      const res = await send(
        server.url,
        [head('POST', EDITS, { ...AUTH, 'Content-Type': contentType, 'Content-Length': body.length }), body.subarray(0, cut)],
        {
          abortAfterWrite: true,
        },
      );
      assert.equal(res.aborted, true);
    }
    await sleep(300);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /ov_diffusion_errors_total\{route="\/images\/edits",code="client_closed"\} 3/);
    assert.match(metrics, /ov_diffusion_http_requests_total\{method="POST",route="\/images\/edits",status="499"\} 3/);
    assert.deepEqual(
      server.lines.filter((line) => /\]\[error\]/.test(line)),
      [],
    );
    assert.equal(server.lines.filter((line) => /status=499/.test(line)).length, 3);
    await assertValidRequestsWork(server.url, image);
  } finally {
    await server.close();
  }
});

test('/metrics with metricsApiKey needs the key; the health checks stay open', async () => {
  const server = await startServer({ metricsApiKey: true });
  try {
    const open = await fetch(`${server.url}/metrics`);
    assert.equal(open.status, 401);
    assert.equal((await open.json()).error.code, 'invalid_api_key');
    const keyed = await fetch(`${server.url}/metrics`, { headers: AUTH });
    assert.equal(keyed.status, 200);
    assert.match(await keyed.text(), /ov_diffusion_http_requests_total/);
    for (const path of ['/v2/health/live', '/healthz']) assert.equal((await fetch(`${server.url}${path}`)).status, 200, path);
  } finally {
    await server.close();
  }
  const plain = await startServer();
  try {
    assert.equal((await fetch(`${plain.url}/metrics`)).status, 200, 'open by default');
  } finally {
    await plain.close();
  }
});

test('a body the parser cannot finish is a 400 within seconds of its end, with the default 30 s body timeout', async () => {
  const image = await makeImage(64, 64);
  const server = await startServer({}, { headersTimeoutMs: 60000, requestTimeoutMs: 300000, bodyTimeoutMs: 30000 });
  try {
    const { body, contentType } = multipart([
      { name: 'prompt', value: 'p' },
      { name: 'image', filename: 'a.png', data: image },
    ]);
    const res = await send(
      server.url,
      [head('POST', EDITS, { ...AUTH, 'Content-Type': contentType, 'Content-Length': body.length + 300 }), body, body.subarray(0, 300)],
      { timeoutMs: 10000 },
    );
    assert.equal(res.status, 400, String(res.body));
    assert.equal(res.json.error.code, 'invalid_multipart');
    assert.ok(res.ms < 4000, `${Math.round(res.ms)} ms`);
    await assertValidRequestsWork(server.url, image);
  } finally {
    await server.close();
  }
});
