'use strict';
// Helpers shared by the Node bench workers: the JSON-lines protocol and /proc memory figures.
const fs = require('fs');

/** Lines the orchestrator reads start with this marker; everything else on stdout/stderr is passed through as log. */
const MARK = '@@BENCH ';

function emit(event) {
  process.stdout.write(`${MARK}${JSON.stringify(event)}\n`);
}

/** VmRSS / VmHWM (peak resident set) of this process, in MiB. */
function memory(pid = 'self') {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number((new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status) || [])[1] || NaN);
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024, anonMiB: kb('RssAnon') / 1024, fileMiB: kb('RssFile') / 1024 };
}

function readStdinJson() {
  return JSON.parse(fs.readFileSync(0, 'utf8'));
}

/** Measures event-loop lag with a 10 ms setInterval (how late each tick fires) while `fn` runs. */
async function withLagProbe(enabled, fn) {
  if (!enabled) return { value: await fn(), lag: undefined };
  const lags = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - 10));
    last = now;
  }, 10);
  try {
    const value = await fn();
    return { value, lag: lags };
  } finally {
    clearInterval(timer);
  }
}

module.exports = { MARK, emit, memory, readStdinJson, withLagProbe };
