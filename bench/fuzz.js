#!/usr/bin/env node
'use strict';
// Seeded fuzzing of the server's input handling (issue 18):
//   node bench/fuzz.js [--seed N] [--count N] [--seconds S] [--corpus] [--dist DIR] [--out file.json]
//   node bench/fuzz.js --seed N --only K     replays mutation K of seed N, printing the request and the answer
//
// Starts the server (createApp on a fake model, as test/server-bad-input.test.js does, with short timeouts) and sends
// --count random mutations of valid requests (JSON generations, multipart edits and variations, GET routes) over raw
// sockets, stopping early after --seconds. Mutations: flipped, inserted and deleted bytes, truncated bodies, false
// Content-Length, headers removed, doubled or garbled, field values swapped for hostile JSON (deep nesting, huge
// strings, control and bidi characters), field names changed, chunked encoding, pauses. The same seed gives the same
// requests. --corpus also replays every case of the bad-input tables (test/helpers/bad-input.js).
//
// Every answer is classed: 2xx, 4xx with an OpenAI-shaped body, 4xx without one, 5xx, or no answer within the
// per-request limit (a hang). Anything but 2xx and shaped 4xx is a failure, printed with its request; so is a valid
// request that fails afterwards. Exit 1 on any failure.
//
// --dist DIR runs another build's server (e.g. /work/main/dist, before this work) to compare; builds without
// createHttpServer get http.createServer with requestTimeout 0, as their launcher did.
// Writes JSON to bench/results/fuzz.json (or --out) and a summary to stdout.
const fs = require('fs');
const http = require('http');
const path = require('path');
const { request, multipart, send, head } = require('../test/helpers/raw-http');
const { fakeModel, makeImage } = require('../test/helpers/server-fakes');
const { prng } = require('./lib/prng');

function args(argv) {
  const out = {
    seed: 1,
    count: 3000,
    seconds: 600,
    corpus: false,
    dist: path.join(__dirname, '..', 'dist'),
    out: undefined,
    only: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--corpus') out.corpus = true;
    else if (['--seed', '--count', '--seconds', '--only'].includes(a)) out[a.slice(2)] = Number(argv[++i]);
    else if (a === '--dist') out.dist = path.resolve(argv[++i]);
    else if (a === '--out') out.out = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  return out;
}

const KEY = 'fuzz-key';
const TIMEOUTS = { headersTimeoutMs: 1500, requestTimeoutMs: 3000, bodyTimeoutMs: 1000 };
const FIELDS = [
  'model',
  'prompt',
  'size',
  'n',
  'response_format',
  'output_format',
  'output_compression',
  'background',
  'stream',
  'partial_images',
  'negative_prompt',
  'num_inference_steps',
  'guidance_scale',
  'rng_seed',
  'strength',
  'scheduler',
  'width',
  'height',
  'lora_alphas',
  'prompt_2',
  'max_sequence_length',
  'num_images_per_prompt',
];

function hostileValue(r) {
  const depth = r.pick([10, 1000, 50000]);
  return r.pick([
    () => `${'['.repeat(depth)}${']'.repeat(depth)}`,
    () => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`,
    () => JSON.stringify('x'.repeat(r.pick([1, 1000, 200000]))),
    () => JSON.stringify('\u0000\u202e\u2066\ud800 evil'),
    () => String(r.pick([0, -1, 1.5, 1e308, -1e-308, 2 ** 53, 4104, 99999])),
    () => r.pick(['true', 'false', 'null', '[]', '{}', '""', '"auto"', '"64x64"', '"4104x8"', '"0x0"', '"DDIM"']),
    () => JSON.stringify({ a: r.pick([1, 'x', [], null]) }),
  ])();
}

function mutateBytes(r, body) {
  const b = Buffer.from(body);
  if (!b.length) return Buffer.from(hostileValue(r));
  const op = r.int(5);
  const at = r.int(b.length);
  if (op === 0) {
    for (let k = 0; k < 1 + r.int(8); k++) b[r.int(b.length)] = r.int(256);
    return b;
  }
  if (op === 1)
    return Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + r.int(64) }, () => r.int(256))), b.subarray(at)]);
  if (op === 2) return Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(256)))]);
  if (op === 3) return b.subarray(0, at);
  return Buffer.concat([b, b.subarray(0, at)]);
}

/** A valid request of one kind, as {path, headers, body} pieces to mutate. */
function validRequest(r, image) {
  const kind = r.pick(['json', 'json', 'edit', 'variation', 'get']);
  if (kind === 'get')
    return {
      kind,
      method: 'GET',
      path: r.pick(['/v1/models', '/v1/models/sd', '/v3/v1/models', '/metrics', '/v2/health/ready']),
      headers: {},
      body: Buffer.alloc(0),
    };
  if (kind === 'json') {
    const fields = { model: 'sd', prompt: 'a fox', size: '64x64' };
    if (r.chance(0.3)) fields.n = 1 + r.int(2);
    if (r.chance(0.3)) fields.output_format = r.pick(['png', 'jpeg', 'webp']);
    return {
      kind,
      method: 'POST',
      path: r.pick(['/v1/images/generations', '/v3/images/generations']),
      headers: { 'Content-Type': 'application/json' },
      fields,
    };
  }
  const fields = kind === 'edit' ? { prompt: 'a fox' } : {};
  return { kind, method: 'POST', path: kind === 'edit' ? '/v1/images/edits' : '/v1/images/variations', image, fields };
}

/** The request with 1-3 mutations; returns the pieces to write. */
function mutated(r, base) {
  const req = { ...base, headers: { Authorization: `Bearer ${KEY}`, ...base.headers }, fields: base.fields && { ...base.fields } };
  const fieldsRaw = {};
  let chunked = false;
  let lengthDelta = 0;
  let pause = 0;
  let byteMutation = false;
  let imageBytes = req.image;
  /** undefined: the request's own; null: left out; a string: replaced. */
  let contentType;
  for (let m = 0; m < 1 + r.int(3); m++) {
    const op = r.int(11);
    if (op === 0 && req.fields) fieldsRaw[r.pick(FIELDS)] = hostileValue(r);
    else if (op === 1 && req.fields) delete req.fields[r.pick(Object.keys(req.fields).concat(['prompt']))];
    else if (op === 2 && req.fields) fieldsRaw[`${r.pick(FIELDS)}${r.pick(['[x]', '[0]', '[]', '\u0000', '"', ' '])}`] = '"v"';
    else if (op === 3) byteMutation = true;
    else if (op === 4) lengthDelta = r.pick([-5, 7, 1000, 10 * 1024 ** 3]);
    else if (op === 5) chunked = true;
    else if (op === 6) {
      const name = r.pick(['Authorization', 'Content-Type']);
      if (name === 'Content-Type') contentType = null;
      else delete req.headers.Authorization;
    } else if (op === 7) {
      const name = r.pick(['Content-Type', 'Expect', 'Content-Encoding', 'Authorization', 'Transfer-Encoding']);
      const value = r.pick([
        'multipart/form-data',
        'application/json; charset=utf-16',
        'text/plain',
        '100-continue',
        'gzip',
        'Bearer x',
        'x'.repeat(9000),
        'chunked, gzip',
        'multipart/form-data; boundary=',
      ]);
      if (name === 'Content-Type') contentType = value;
      else req.headers[name] = value;
    } else if (op === 8 && imageBytes) imageBytes = mutateBytes(r, imageBytes);
    else if (op === 9) pause = r.pick([50, 300, 1200]);
    else if (op === 10)
      req.path = r.pick([req.path.toUpperCase(), `${req.path}/`, `${req.path}?x=%zz`, `${req.path}%00`, req.path.replace('/v1', '/v2')]);
  }
  let body;
  if (req.method === 'GET') body = Buffer.alloc(0);
  else if (req.headers['Content-Type'] === 'application/json' || !req.image) {
    const parts = Object.entries(req.fields ?? {}).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    for (const [k, v] of Object.entries(fieldsRaw)) parts.push(`${JSON.stringify(k)}:${v}`);
    body = Buffer.from(`{${parts.join(',')}}`);
  } else {
    const list = Object.entries(req.fields ?? {}).map(([name, value]) => ({ name, value: String(value) }));
    for (const [name, v] of Object.entries(fieldsRaw)) list.push({ name, value: v });
    list.push({ name: 'image', filename: 'a.png', data: imageBytes });
    const form = multipart(list);
    req.headers['Content-Type'] = form.contentType;
    body = form.body;
  }
  if (byteMutation) body = mutateBytes(r, body);
  const headers = { ...req.headers };
  if (contentType === null) delete headers['Content-Type'];
  else if (contentType !== undefined) headers['Content-Type'] = contentType;
  if (chunked && req.method === 'POST') {
    headers['Transfer-Encoding'] = 'chunked';
    const cut = r.int(body.length + 1);
    const chunks = [body.subarray(0, cut), body.subarray(cut)].filter((c) => c.length);
    const text = chunks.map((c) => Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]));
    return { pieces: [head(req.method, req.path, headers), ...text, ...(pause ? [{ wait: pause }] : []), '0\r\n\r\n'], kind: req.kind };
  }
  if (lengthDelta) headers['Content-Length'] = String(Math.max(0, body.length + lengthDelta));
  const whole = request(req.method, req.path, headers, body);
  if (!pause) return { pieces: [whole], kind: req.kind };
  const at = r.int(whole.length);
  return { pieces: [whole.subarray(0, at), { wait: pause }, whole.subarray(at)], kind: req.kind };
}

function classify(res) {
  if (res.error) return 'no-answer';
  if (res.status >= 200 && res.status < 300) return '2xx';
  if (res.status >= 500) return '5xx';
  if (res.status >= 400) {
    const e = res.json?.error;
    const shaped = e && typeof e.message === 'string' && e.type === 'invalid_request_error' && 'param' in e && 'code' in e;
    return shaped ? '4xx' : '4xx-unshaped';
  }
  return `other-${res.status}`;
}

async function startServer(dist) {
  const { createApp } = require(path.join(dist, 'server', 'app'));
  const { buildModelSettings } = require(path.join(dist, 'server', 'settings'));
  const { createLogger } = require(path.join(dist, 'server', 'log'));
  let createHttpServer;
  try {
    ({ createHttpServer } = require(path.join(dist, 'server', 'body')));
  } catch {
    createHttpServer = undefined;
  }
  const errors = [];
  const logger = createLogger('WARNING', (line) => {
    if (/\]\[error\]/.test(line)) errors.push(line.slice(0, 300));
  });
  const model = fakeModel({ sizeFromImage: true });
  const app = createApp({
    models: [{ name: 'sd', model, settings: buildModelSettings({ max_resolution: '512x512' }) }],
    apiKey: KEY,
    logger,
    serving: { timeouts: TIMEOUTS },
  });
  let server;
  if (createHttpServer) server = createHttpServer(app, TIMEOUTS);
  else {
    server = http.createServer(app);
    server.requestTimeout = 0;
  }
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    errors,
    withServerTimeouts: Boolean(createHttpServer),
    close: () => {
      server.closeAllConnections();
      server.close();
      app.dispose();
    },
  };
}

async function main() {
  const o = args(process.argv.slice(2));
  const r = prng(o.seed);
  const image = await makeImage(64, 64);
  const server = await startServer(o.dist);
  const started = performance.now();
  const tally = {};
  const byKind = {};
  const failures = [];
  const record = (name, kind, res, describe) => {
    const cls = classify(res);
    tally[cls] = (tally[cls] ?? 0) + 1;
    byKind[kind] ??= {};
    byKind[kind][cls] = (byKind[kind][cls] ?? 0) + 1;
    if (!['2xx', '4xx'].includes(cls))
      failures.push({
        name,
        class: cls,
        status: res.status,
        answer: res.error ?? res.body?.toString('utf8').slice(0, 200),
        request: describe().slice(0, 300),
      });
  };
  const attempt = async (pieces, timeoutMs) => {
    try {
      return await send(server.url, pieces, { timeoutMs });
    } catch (error) {
      return { error: error.message.slice(0, 200) };
    }
  };
  const describe = (pieces) => () =>
    pieces.map((p) => (Buffer.isBuffer(p) || typeof p === 'string' ? Buffer.from(p).toString('latin1') : `<wait ${p.wait}>`)).join('');

  let corpusCount = 0;
  if (o.corpus) {
    const { allCases } = require('../test/helpers/bad-input');
    const { cases } = await allCases();
    for (const c of cases) {
      // The corpus was written for KEY of the tests; give this server's key.
      const pieces = c.pieces.map((p) =>
        Buffer.isBuffer(p)
          ? Buffer.from(p.toString('latin1').replace(/test-key-7f3a/g, KEY), 'latin1')
          : typeof p === 'string'
            ? p.replace(/test-key-7f3a/g, KEY)
            : p,
      );
      record(`corpus: ${c.name}`, `corpus-${c.group}`, await attempt(pieces, 6000), describe(pieces));
      corpusCount++;
    }
  }
  let sent = 0;
  for (; sent < o.count && (performance.now() - started) / 1000 < o.seconds; sent++) {
    const { pieces, kind } = mutated(r, validRequest(r, image));
    if (o.only !== undefined) {
      // Replays one mutation of the seed's sequence, printing the whole request and the answer.
      if (sent !== o.only) continue;
      const res = await attempt(pieces, 6000);
      console.log(describe(pieces)());
      console.log(
        JSON.stringify({ class: classify(res), status: res.status, error: res.error, body: res.body?.toString('utf8').slice(0, 500) }),
      );
      console.log(`server error log: ${server.errors.join('\n')}`);
      server.close();
      return;
    }
    record(`mutation ${sent}`, kind, await attempt(pieces, 6000), describe(pieces));
  }
  // Valid requests afterwards.
  const after = [];
  for (const pieces of [
    [
      request(
        'POST',
        '/v1/images/generations',
        { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
        JSON.stringify({ prompt: 'p', size: '64x64' }),
      ),
    ],
    (() => {
      const f = multipart([
        { name: 'prompt', value: 'p' },
        { name: 'image', filename: 'a.png', data: image },
      ]);
      return [request('POST', '/v1/images/edits', { Authorization: `Bearer ${KEY}`, 'Content-Type': f.contentType }, f.body)];
    })(),
  ]) {
    const res = await attempt(pieces, 6000);
    after.push(res.status ?? res.error);
    if (res.status !== 200)
      failures.push({
        name: 'valid request afterwards',
        status: res.status,
        answer: res.error ?? res.body?.toString('utf8').slice(0, 200),
      });
  }
  server.close();
  const seconds = (performance.now() - started) / 1000;
  const result = {
    date: new Date().toISOString(),
    command: `node bench/fuzz.js ${process.argv.slice(2).join(' ')}`.trim(),
    dist: path.relative(path.join(__dirname, '..'), o.dist) || o.dist,
    serverTimeouts: server.withServerTimeouts ? TIMEOUTS : 'none (http.createServer, requestTimeout 0)',
    seed: o.seed,
    corpusCases: corpusCount,
    mutations: sent,
    seconds: Math.round(seconds * 10) / 10,
    tally,
    byKind,
    validAfterwards: after,
    errorLogLines: server.errors.length,
    failures: failures.slice(0, 100),
    failureCount: failures.length,
  };
  const out = o.out ?? path.join(__dirname, 'results', 'fuzz.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`fuzz: seed ${o.seed}, ${corpusCount} corpus cases + ${sent} mutations in ${result.seconds} s against ${result.dist}`);
  console.log(`answers: ${JSON.stringify(tally)}`);
  console.log(`valid requests afterwards: ${after.join(', ')}; error-level log lines: ${server.errors.length}`);
  console.log(`failures (5xx, unshaped 4xx, no answer, other): ${failures.length}`);
  for (const f of failures.slice(0, 15)) console.log(`  ${f.name}: ${f.class ?? ''} ${f.status ?? ''} ${String(f.answer).slice(0, 120)}`);
  console.log(`written: ${path.relative(process.cwd(), out)}`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
