'use strict';
// From workers' events to figures (summaries) and to the rows of the results tables.
const { summarize, percentiles, median, ratio } = require('./stats');

function eventsOf(res, type) {
  return res ? res.events.filter((e) => e.event === type) : [];
}
function firstEvent(res, type) {
  return eventsOf(res, type)[0];
}

/** Figures of one or more generation workers (rounds of the same measurement) for the runs labelled `label`. */
function generationFigures(resList, label) {
  const list = (Array.isArray(resList) ? resList : [resList]).filter(Boolean);
  if (!list.length) return null;
  const all = (type) => list.flatMap((r) => eventsOf(r, type));
  const runs = all('run').filter((e) => e.label === label);
  const measured = runs.filter((e) => !e.warmup);
  const warm = runs.filter((e) => e.warmup);
  const m = (key) => summarize(measured.map((e) => e.metrics[key]));
  const stepSum = measured.map((e) => e.metrics.stepMs.reduce((a, b) => a + b, 0));
  const foreign = list.map((r) => r.foreignCpu).filter((x) => x !== undefined);
  return {
    generateMs: summarize(measured.map((e) => e.wallMs)),
    cpuMs: summarize(measured.map((e) => e.cpuMs)),
    firstGenerateMs: summarize(warm.map((e) => e.wallMs)),
    engineTotalMs: m('totalMs'),
    stepMs: summarize(measured.map((e) => median(e.metrics.stepMs))),
    denoiserMs: summarize(measured.map((e) => median(e.metrics.denoiserMs))),
    denoiseTotalMs: summarize(stepSum),
    textEncodeMs: m('textEncodeMs'),
    vaeDecodeMs: m('vaeDecodeMs'),
    vaeEncodeMs: m('vaeEncodeMs'),
    otherMs: summarize(
      measured.map((e, i) => e.wallMs - stepSum[i] - e.metrics.textEncodeMs - e.metrics.vaeDecodeMs - e.metrics.vaeEncodeMs),
    ),
    steps: measured[0] ? measured[0].steps : undefined,
    sha256: [...new Set(runs.map((e) => e.sha256))],
    loadMs: summarize(all('load').map((e) => e.wallMs)),
    importedRssMiB: summarize(all('imported').map((e) => e.rssMiB)),
    afterLoadRssMiB: summarize(all('load').map((e) => e.rssMiB)),
    afterLoadAnonMiB: summarize(all('load').map((e) => e.anonMiB)),
    afterLoadFileMiB: summarize(all('load').map((e) => e.fileMiB)),
    peakRssMiB: summarize(all('end').map((e) => e.hwmMiB)),
    lag: percentiles(measured.flatMap((e) => e.lag || [])),
    foreignCpu: foreign.length ? foreign.reduce((a, b) => a + b, 0) / foreign.length : undefined,
    processes: list.length,
    runs: measured.length,
  };
}

const single = (x) => (Number.isFinite(x) ? summarize([x]) : null);

function row(caseName, metric, value, base, extra = {}) {
  return { case: caseName, metric, value, base, ratio: ratio(value.s, base && base.s), ...extra };
}

/** Ours / openvino_genai over generations that ran back to back (ABBA): the median of the pairs' ratios. */
function pairRatioRow(caseName, what, pairs) {
  const s = summarize(pairs.map((p) => p.ours.wallMs / p.oracle.wallMs));
  return row(
    caseName,
    `${what} ours / openvino_genai, per alternating pair (median of the pairs' ratios)`,
    { label: 'ratio', s, unit: 'x' },
    null,
    { goal: '<= 1.00', pass: s.median <= 1 },
  );
}

module.exports = { eventsOf, firstEvent, generationFigures, single, row, pairRatioRow };
