'use strict';
// Case concurrency: N simultaneous generations on one loaded model (and N parallel streams): throughput, latency,
// memory.
const { summarize, median } = require('../lib/stats');
const { memAvailableMiB } = require('../lib/machine');
const { eventsOf, firstEvent, generationFigures, single, row } = require('../lib/figures');
const { log } = require('../lib/log');

async function run(session, m) {
  const o = session.opts;
  const rows = [];
  const levels = {};
  const describe = (key) => `${parseInt(key, 10)} at once${key.endsWith('s') ? `, NUM_STREAMS=${parseInt(key, 10)}` : ''}`;
  for (const key of o.concurrency) {
    const n = parseInt(key, 10);
    const streams = key.endsWith('s');
    let fig;
    if (n === 1 && !streams) {
      const f = generationFigures(await session.t2i(m, 'ours'), 't2i');
      const runs = m.shared['t2i-ours'].flatMap((r) => eventsOf(r, 'run')).filter((e) => e.label === 't2i' && !e.warmup);
      fig = {
        wallMs: f.generateMs,
        throughput: summarize(runs.map((e) => 60000 / e.wallMs)),
        latency: f.generateMs,
        peakRssMiB: f.peakRssMiB,
        stepMs: f.stepMs,
      };
    } else {
      // Guard against swapping (or the OOM killer hitting other processes): estimate from one-at-a-time.
      const f1 = m.shared['t2i-ours'] && generationFigures(m.shared['t2i-ours'], 't2i');
      if (f1 && f1.afterLoadRssMiB && f1.peakRssMiB) {
        const need = (streams ? n : 1) * f1.afterLoadRssMiB.median + n * Math.max(0, f1.peakRssMiB.max - f1.afterLoadRssMiB.median);
        const avail = memAvailableMiB();
        if (need > 0.85 * avail) {
          log(
            `${m.id} · concurrency ${describe(key)}: skipped, it may need ~${Math.round(need)} MiB and ${Math.round(avail)} MiB are available`,
          );
          levels[key] = { error: `skipped: may need ~${Math.round(need)} MiB, ${Math.round(avail)} MiB available` };
          continue;
        }
      }
      const spec = session.baseSpec(m, {
        maxConcurrency: n,
        runs: [
          session.t2iRun(m, { label: 'warm', repeat: 0, warmup: o.warmup }),
          session.t2iRun(m, { label: `c${key}`, concurrency: n, repeat: o.concurrencyRepeat, warmup: 0 }),
        ],
      });
      if (streams) spec.properties.NUM_STREAMS = String(n);
      const res = await session.worker('engine', spec, `${m.id} · concurrency ${describe(key)}`);
      const runs = eventsOf(res, 'run').filter((e) => e.label === `c${key}`);
      if (!runs.length) {
        levels[key] = { error: res.error };
        continue;
      }
      fig = {
        wallMs: summarize(runs.map((e) => e.wallMs)),
        throughput: summarize(runs.map((e) => (60000 * n) / e.wallMs)),
        latency: summarize(runs.flatMap((e) => e.latencies)),
        peakRssMiB: single(firstEvent(res, 'end')?.hwmMiB),
        stepMs: summarize(runs.flatMap((e) => e.allMetrics.map((x) => median(x.stepMs)))),
      };
    }
    fig.label = describe(key);
    levels[key] = fig;
  }
  const v = (label, s, unit) => ({ label, s, unit });
  const base = levels['1'];
  for (const key of o.concurrency) {
    const f = levels[key];
    if (!f || f.error) continue;
    const what = describe(key);
    rows.push(
      row(
        'concurrency',
        `${what}: throughput`,
        v(what, f.throughput, 'img/min'),
        base ? v('1 at a time', base.throughput, 'img/min') : null,
      ),
    );
    rows.push(
      row('concurrency', `${what}: latency per request`, v(what, f.latency, 'ms'), base ? v('1 at a time', base.latency, 'ms') : null),
    );
    rows.push(
      row('concurrency', `${what}: peak RSS`, v(what, f.peakRssMiB, 'MiB'), base ? v('1 at a time', base.peakRssMiB, 'MiB') : null),
    );
  }
  const skipped = Object.entries(levels)
    .filter(([, f]) => f && f.error)
    .map(([k, f]) => `${describe(k)}: ${f.error}`);
  return { status: 'ok', levels, rows, note: skipped.length ? skipped.join('; ') : undefined };
}

module.exports = {
  section: 5,
  title: 'Concurrency on one loaded model (library, maxConcurrency = N)',
  description: '1/2/4 simultaneous generations on one loaded model: throughput, latency, memory',
  run,
};
