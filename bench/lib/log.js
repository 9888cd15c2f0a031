'use strict';
// Progress lines on stdout, stamped with the time since the bench started.
const { median } = require('./stats');

const T0 = Date.now();
function log(message) {
  const s = Math.round((Date.now() - T0) / 1000);
  const stamp = `${String(Math.floor(s / 60)).padStart(3)}m${String(s % 60).padStart(2, '0')}s`;
  process.stdout.write(`[bench ${stamp}] ${message}\n`);
}
const fmtMs = (ms) => (ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

function progress(prefix) {
  return (e) => {
    if (e.event === 'load') log(`${prefix}: loaded in ${fmtMs(e.wallMs)} (RSS ${Math.round(e.rssMiB)} MiB)`);
    else if (e.event === 'run') {
      const step = e.metrics && e.metrics.stepMs && e.metrics.stepMs.length ? `, step ${fmtMs(median(e.metrics.stepMs))}` : '';
      const c = e.concurrency > 1 ? ` x${e.concurrency}` : '';
      log(`${prefix}: ${e.label}${c} #${e.index + 1}${e.warmup ? ' (warm-up)' : ''} ${fmtMs(e.wallMs)}${step}, ${e.steps} steps`);
    } else if (e.event === 'error') log(`${prefix}: ERROR ${e.message}`);
  };
}

module.exports = { T0, log, fmtMs, progress };
