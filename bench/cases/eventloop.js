'use strict';
// Case eventloop: whether the event loop stays responsive while a generation runs, in the server (/healthz) and in
// the library's own process (setInterval lag).
const { summarize, percentiles, median } = require('../lib/stats');
const { startServer } = require('../lib/workers');
const { request, startProbe } = require('../lib/http');
const { eventsOf, generationFigures, single, row } = require('../lib/figures');
const { log } = require('../lib/log');

async function run(session, m) {
  const o = session.opts;
  const rows = [];
  const result = { status: 'ok', rows };
  const v = (label, s, unit = 'ms') => ({ label, s, unit });
  const server = await session.ensureServer(m);
  if (server.ok) {
    const health = `${server.url}/healthz`;
    for (let i = 0; i < 20; i += 1) await request(health); // connections warm
    let probe = startProbe(health, 10);
    await new Promise((r) => setTimeout(r, 3000));
    const idle = await probe.stop();
    const { busy, perRun } = await session.probeDuringGenerations(m, server, o.repeat, {}, 'eventloop');
    result.health = {
      idle: percentiles(idle.latencies),
      busy: percentiles(busy.latencies),
      failures: busy.failures + idle.failures,
      perRun,
    };
    const p99s = summarize(perRun.filter(Boolean).map((p) => p.p99));
    const p50s = summarize(perRun.filter(Boolean).map((p) => p.p50));
    const idleP = result.health.idle;
    rows.push(
      row('eventloop', 'server /healthz p50 while generating', v('generating', p50s), v('idle server', single(idleP && idleP.p50))),
    );
    rows.push(
      row('eventloop', 'server /healthz p99 while generating', v('generating', p99s), v('idle server', single(idleP && idleP.p99)), {
        goal: '< 10 ms',
        pass: p99s && p99s.median < 10,
      }),
    );
    rows.push(
      row(
        'eventloop',
        'server /healthz max while generating',
        v('generating', summarize(perRun.filter(Boolean).map((p) => p.max))),
        v('idle server', single(idleP && idleP.max)),
      ),
    );
    // The same with one CPU left to the event loop (INFERENCE_NUM_THREADS = threads - 1): shows whether a slow p99
    // comes from the inference threads taking every core. One generation of at most 5 steps.
    if (o.threads > 1) {
      const threads = String(o.threads - 1);
      log(`${m.id} · eventloop: a second server with INFERENCE_NUM_THREADS=${threads}`);
      const spare = await startServer(
        { model: m.dir, properties: { ...o.properties, INFERENCE_NUM_THREADS: threads }, maxConcurrency: 1 },
        { verbose: o.verbose },
      );
      if (spare.ok) {
        const srv = { ok: true, handle: spare.handle, url: spare.handle.url };
        for (let i = 0; i < 20; i += 1) await request(`${srv.url}/healthz`);
        const got = await session.probeDuringGenerations(
          m,
          srv,
          1,
          { num_inference_steps: Math.min(o.steps, 5) },
          `eventloop (${threads} inference threads)`,
        );
        await spare.handle.stop();
        const q = got.perRun[0];
        result.spareCore = { threads: Number(threads), health: q };
        if (q)
          rows.push(
            row(
              'eventloop',
              `server /healthz p99 while generating, INFERENCE_NUM_THREADS=${threads}`,
              v(`${threads} inference threads`, single(q.p99)),
              v(`${o.threads} inference threads`, p99s),
              { goal: '< 10 ms', pass: q.p99 < 10 },
            ),
          );
      } else {
        log(`${m.id} · eventloop: the second server did not start: ${spare.error}`);
      }
    }
  } else {
    result.serverNote = `server not available: ${server.error}`;
  }
  // In-process: setInterval(10 ms) lag in the library's own process during generate(). Its own worker: the probe
  // wakes the main thread 100 times a second, which on a machine with few cores costs the inference threads a little.
  const lagRes = await session.worker(
    'engine',
    session.baseSpec(m, { runs: [session.t2iRun(m, { label: 'lag', lag: true })] }),
    `${m.id} · library event loop (setInterval probe)`,
  );
  const lib = generationFigures(lagRes, 'lag');
  const perRun = eventsOf(lagRes, 'run')
    .filter((e) => !e.warmup && e.lag)
    .map((e) => percentiles(e.lag))
    .filter(Boolean);
  result.libraryLag = lib.lag;
  const plain = generationFigures(await session.t2i(m, 'ours'), 't2i');
  rows.push(
    row(
      'eventloop',
      'library: generate() with the 10 ms probe running',
      v('with probe', lib.generateMs),
      v('without (engine case)', plain.generateMs),
    ),
  );
  rows.push(row('eventloop', 'library: setInterval(10 ms) lag p50 during generate()', v('lag', summarize(perRun.map((p) => p.p50))), null));
  rows.push(
    row('eventloop', 'library: setInterval(10 ms) lag p99 during generate()', v('lag', summarize(perRun.map((p) => p.p99))), null, {
      goal: '< 10 ms',
      pass: perRun.length > 0 && median(perRun.map((p) => p.p99)) < 10,
    }),
  );
  rows.push(row('eventloop', 'library: setInterval(10 ms) lag max during generate()', v('lag', summarize(perRun.map((p) => p.max))), null));
  return result;
}

module.exports = {
  section: 4,
  title: 'Event-loop responsiveness while generating',
  description: 'health p50/p99 every 10 ms while the server generates; setInterval lag in the library',
  run,
};
