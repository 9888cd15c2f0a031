#!/usr/bin/env node
'use strict';
// Soak of the real server (issue 18):
//   node bench/soak.js [--minutes M] [--requests N] [--seed S] [--concurrency C] [--model DIR] [--kinds LIST] [--out file.json]
//
// Starts the CLI on a model folder (default: the sd15 fixture, with its two kohya LoRA adapters as 'sd15-a' and
// 'sd15-b' and a blend 'sd15-ab'), then sends a seeded mix of requests from C clients until N requests or M minutes:
// text-to-image at several sizes and n, edits and variations, streams (some with partial images), requests cancelled
// part way, LoRA switches (the base model, each alias, the blend, lora_alphas), and bad requests from the bad-input
// tables (test/helpers/bad-input.js). Every 500 ms it samples the server's RSS (/proc/<pid>/status) and the event-loop
// delay a /v2/health/live round trip shows. Reports: answers by class, every answer that is neither 2xx nor an
// OpenAI-shaped 4xx (target: none; cancelled requests are counted apart), and the slope of RSS after the warm-up
// (the first 20% of the run) by least squares, in MiB per 1000 requests and per hour (target: flat within noise),
// for the whole RSS, its anonymous part (the rest is file pages, mostly the memory-mapped weights) and that less the
// JS heap (the native side's), with a series every 30 s. --kinds restricts the mix (e.g. t2i,lora_alphas) to find which requests a growth follows.
// Writes JSON to bench/results/soak.json (or --out).
const fs = require('fs');
const path = require('path');
const { startCli } = require('../test/helpers/server-http');
const { makeImage } = require('../test/helpers/server-fakes');
const { request, multipart, send } = require('../test/helpers/raw-http');
const { prng } = require('./lib/prng');

const ROOT = path.join(__dirname, '..');

function args(argv) {
  const o = {
    minutes: 10,
    requests: 3000,
    seed: 7,
    concurrency: 3,
    model: path.join(ROOT, 'test', 'fixtures', 'sd15'),
    kinds: MIX,
    out: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (['--minutes', '--requests', '--seed', '--concurrency'].includes(a)) o[a.slice(2)] = Number(argv[++i]);
    else if (a === '--model') o.model = path.resolve(argv[++i]);
    else if (a === '--out') o.out = argv[++i];
    else if (a === '--kinds') {
      const kinds = argv[++i].split(',');
      const unknown = kinds.filter((k) => !MIX.includes(k));
      if (unknown.length) throw new Error(`unknown kinds ${unknown.join(',')}: the kinds are ${[...new Set(MIX)].join(',')}`);
      o.kinds = MIX.filter((k) => kinds.includes(k)); // keeps the mix's weights
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

// The request mix: each draw picks one entry (so t2i and bad requests come more often).
const MIX = ['t2i', 't2i', 't2i', 'edit', 'variation', 'stream', 'cancel', 'lora_alphas', 'bad', 'bad'];

const status = (pid) => fs.readFileSync(`/proc/${pid}/status`, 'utf8');
const statusMiB = (text, field) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(text)[1]) / 1024;

/** Least-squares slope of y over x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
  }
  return sxx ? sxy / sxx : 0;
}

const quantile = (values, q) => {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};

async function main() {
  const o = args(process.argv.slice(2));
  const r = prng(o.seed);
  const loras = path.join(ROOT, 'test', 'fixtures', 'loras');
  const server = await startCli(
    [
      '--model_name',
      'sd15',
      '--model_path',
      o.model,
      '--max_concurrency',
      '2',
      '--max_queue_size',
      '64',
      '--default_num_inference_steps',
      '2',
      '--source_loras',
      `sd15-a=${path.join(loras, 'sd15-kohya-a.safetensors')}:0.8,sd15-b=${path.join(loras, 'sd15-kohya-b.safetensors')},sd15-ab=@sd15-a:0.5+@sd15-b:0.5`,
    ],
    { timeoutMs: 300000 },
  );
  const pid = server.child.pid;
  const image = await makeImage(64, 64);
  const { allCases } = require('../test/helpers/bad-input');
  // The corpus is written for the tests' key; this server has none, so its auth cases would pass: leave them out.
  const bad = (await allCases()).cases.filter((c) => c.group !== 'auth' && !c.withinMs);

  const started = performance.now();
  const samples = [];
  let done = 0;
  // The JS heap and the memory V8 knows outside it (Buffers), from the server's /metrics every 10 s: what of the RSS
  // is the JS side's (garbage waiting for a collection counts until it happens).
  let js = { heapMiB: 0, externalMiB: 0 };
  const metricMiB = (text, name) => Number(new RegExp(`^ov_diffusion_${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  const readJs = async () => {
    try {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      js = { heapMiB: metricMiB(text, 'nodejs_heap_size_total_bytes'), externalMiB: metricMiB(text, 'nodejs_external_memory_bytes') };
    } catch {
      // keeps the last reading
    }
  };
  await readJs();
  const jsSampler = setInterval(readJs, 10000);
  const sampler = setInterval(async () => {
    const t0 = performance.now();
    try {
      await fetch(`${server.url}/v2/health/live`);
    } catch {
      // counted as a missing sample
    }
    const now = status(pid);
    samples.push({
      t: (performance.now() - started) / 1000,
      requests: done,
      rssMiB: statusMiB(now, 'VmRSS'),
      anonMiB: statusMiB(now, 'RssAnon'),
      ...js,
      fds: fs.readdirSync(`/proc/${pid}/fd`).length,
      healthMs: performance.now() - t0,
    });
  }, 500);

  const tally = {};
  const byKind = {};
  const unexpected = [];
  const models = ['sd15', 'sd15-a', 'sd15-b', 'sd15-ab'];
  const one = async () => {
    const kind = r.pick(o.kinds);
    let pieces;
    let cancelAfterMs;
    const model = r.pick(models);
    const size = r.pick(['64x64', '96x64', '128x128', '64x128']);
    const json = (body) => [request('POST', '/v1/images/generations', { 'Content-Type': 'application/json' }, JSON.stringify(body))];
    if (kind === 't2i') pieces = json({ model, prompt: 'soak', size, n: 1 + r.int(2) });
    else if (kind === 'stream') pieces = json({ model, prompt: 'soak', size, stream: true, partial_images: r.int(3) });
    else if (kind === 'cancel') {
      pieces = json({ model, prompt: 'soak', size: '128x128', num_inference_steps: 20 });
      cancelAfterMs = 50 + r.int(300);
    } else if (kind === 'lora_alphas')
      pieces = json({ model: 'sd15-ab', prompt: 'soak', size, lora_alphas: { 'sd15-a': r.next(), 'sd15-b': r.next() } });
    else if (kind === 'edit' || kind === 'variation') {
      const parts = [
        { name: 'model', value: model },
        { name: 'image', filename: 'in.png', data: image },
        ...(kind === 'edit' ? [{ name: 'prompt', value: 'soak' }] : []),
      ];
      const f = multipart(parts);
      pieces = [request('POST', `/v1/images/${kind === 'edit' ? 'edits' : 'variations'}`, { 'Content-Type': f.contentType }, f.body)];
    } else {
      const c = r.pick(bad);
      pieces = c.pieces.map((p) =>
        Buffer.isBuffer(p) ? Buffer.from(p.toString('latin1').replace(/Authorization: Bearer [^\r]*\r\n/g, ''), 'latin1') : p,
      );
    }
    let res;
    try {
      if (cancelAfterMs !== undefined) {
        res = await send(server.url, pieces, { timeoutMs: cancelAfterMs });
      } else res = await send(server.url, pieces, { timeoutMs: 120000 });
    } catch (error) {
      res = cancelAfterMs !== undefined ? { cancelled: true } : { error: error.message.slice(0, 200) };
    }
    let cls;
    if (res.cancelled) cls = 'cancelled';
    else if (res.error) cls = 'no-answer';
    else if (res.status >= 200 && res.status < 300) cls = '2xx';
    else if (res.status >= 400 && res.status < 500 && res.json?.error?.type === 'invalid_request_error') cls = '4xx';
    else cls = `other-${res.status}`;
    // A stream's errors arrive as events after a 200.
    if (cls === '2xx' && kind === 'stream' && /"type":"error"/.test(res.body.toString('utf8'))) cls = 'stream-error';
    tally[cls] = (tally[cls] ?? 0) + 1;
    byKind[kind] ??= {};
    byKind[kind][cls] = (byKind[kind][cls] ?? 0) + 1;
    if (!['2xx', '4xx', 'cancelled'].includes(cls))
      unexpected.push({
        t: Math.round((performance.now() - started) / 100) / 10,
        request: done,
        kind,
        class: cls,
        status: res.status,
        answer: res.error ?? res.body?.toString('utf8').slice(0, 300),
      });
    done += 1;
  };
  const deadline = started + o.minutes * 60000;
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      while (done < o.requests && performance.now() < deadline) await one();
    }),
  );
  clearInterval(sampler);
  clearInterval(jsSampler);
  const seconds = (performance.now() - started) / 1000;
  const after = samples.filter((s) => s.t >= seconds * 0.2);
  const perRequest = slope(after.map((s) => ({ x: s.requests, y: s.rssMiB })));
  const perSecond = slope(after.map((s) => ({ x: s.t, y: s.rssMiB })));
  const anonPerRequest = slope(after.map((s) => ({ x: s.requests, y: s.anonMiB })));
  // The anonymous RSS less the JS heap: the native side's (OpenVINO, the engine, malloc). V8 grows its heap in steps
  // as it sees fit, which shows in the RSS as jumps that are not leaks.
  const nativePerRequest = slope(after.filter((s) => s.heapMiB > 0).map((s) => ({ x: s.requests, y: s.anonMiB - s.heapMiB })));
  const series = samples.filter((s, i) => i === samples.length - 1 || Math.floor(s.t / 30) !== Math.floor((samples[i + 1]?.t ?? 0) / 30));
  const health = samples.map((s) => s.healthMs);
  const output = server.output();
  await server.stop();
  const result = {
    date: new Date().toISOString(),
    command: `node bench/soak.js ${process.argv.slice(2).join(' ')}`.trim(),
    model: path.relative(ROOT, o.model) || o.model,
    seed: o.seed,
    concurrency: o.concurrency,
    requests: done,
    seconds: Math.round(seconds),
    tally,
    byKind,
    unexpected: unexpected.slice(0, 50),
    unexpectedCount: unexpected.length,
    rss: {
      startMiB: Math.round(samples[0]?.rssMiB ?? 0),
      afterWarmupMiB: Math.round(after[0]?.rssMiB ?? 0),
      endMiB: Math.round(samples.at(-1)?.rssMiB ?? 0),
      maxMiB: Math.round(Math.max(...samples.map((s) => s.rssMiB))),
      slopeMiBPer1000Requests: Math.round(perRequest * 1000 * 100) / 100,
      slopeMiBPerHour: Math.round(perSecond * 3600 * 10) / 10,
      anonSlopeMiBPer1000Requests: Math.round(anonPerRequest * 1000 * 100) / 100,
      nativeSlopeMiBPer1000Requests: Math.round(nativePerRequest * 1000 * 100) / 100,
      samples: samples.length,
      // [seconds, requests answered, RSS MiB, anonymous RSS MiB, JS heap MiB, JS external MiB] every 30 s
      series: series.map((s) => [s.t, s.requests, s.rssMiB, s.anonMiB, s.heapMiB, s.externalMiB].map(Math.round)),
    },
    openFiles: { start: samples[0]?.fds, max: Math.max(...samples.map((s) => s.fds)), end: samples.at(-1)?.fds },
    healthRoundTripMs: {
      p50: Math.round(quantile(health, 0.5)),
      p99: Math.round(quantile(health, 0.99)),
      max: Math.round(Math.max(...health)),
    },
    serverErrorLines: output
      .split('\n')
      .filter((l) => /\]\[error\]/.test(l))
      .slice(0, 20),
    serverWarnings: output
      .split('\n')
      .filter((l) => /\]\[warning\]/.test(l))
      .slice(0, 20),
    serverTail: output.split('\n').slice(-30),
  };
  const out = o.out ?? path.join(__dirname, 'results', 'soak.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`soak: ${done} requests in ${result.seconds} s (${o.concurrency} clients, seed ${o.seed}) on ${result.model}`);
  console.log(`answers: ${JSON.stringify(tally)}`);
  console.log(`unexpected (not 2xx, shaped 4xx or a cancel): ${unexpected.length}`);
  for (const u of unexpected.slice(0, 10)) console.log(`  ${u.kind}: ${u.class} ${String(u.answer).slice(0, 150)}`);
  const { series: every30s, ...rss } = result.rss;
  console.log(`RSS: ${JSON.stringify(rss)}`);
  console.log(`RSS every 30 s [s, requests, MiB, anonymous MiB, JS heap MiB, JS external MiB]: ${JSON.stringify(every30s)}`);
  console.log(`health round trip (event-loop delay): ${JSON.stringify(result.healthRoundTripMs)}`);
  console.log(`open files of the server: ${JSON.stringify(result.openFiles)}`);
  console.log(`server error lines: ${result.serverErrorLines.length}`);
  console.log(`written: ${path.relative(process.cwd(), out)}`);
  process.exit(unexpected.length ? 1 : 0);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
