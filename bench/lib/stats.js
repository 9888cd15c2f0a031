'use strict';
// Small statistics helpers: every measured figure is kept as {median, min, max, n, samples}.

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos),
    hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Summary of repeated measurements (null when there are none). */
function summarize(samples) {
  const xs = samples.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (!xs.length) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    min: sorted[0],
    max: sorted[sorted.length - 1],
    n: xs.length,
    samples: xs.map((x) => Math.round(x * 1000) / 1000),
  };
}

/** p50/p90/p99/max of a large sample (latencies, lags), without keeping every sample. */
function percentiles(samples) {
  const xs = samples.filter((x) => Number.isFinite(x));
  if (!xs.length) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  return {
    n: xs.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1],
    mean: xs.reduce((a, b) => a + b, 0) / xs.length,
  };
}

const median = (xs) => {
  const s = summarize(xs);
  return s ? s.median : NaN;
};

/** ratio of two summaries' medians (a / b), null if either is missing. */
function ratio(a, b) {
  if (!a || !b || !Number.isFinite(a.median) || !Number.isFinite(b.median) || b.median === 0) return null;
  return a.median / b.median;
}

module.exports = { quantile, summarize, percentiles, median, ratio };
