'use strict';
// Runs the pinned openvino_genai Python pipelines (test/oracle/oracle.py) and returns their pixels.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const { ROOT } = require('./paths');

const PYTHON = process.env.ORACLE_PYTHON || path.join(ROOT, '.cache', 'oracle-venv', 'bin', 'python');
const SCRIPT = path.join(ROOT, 'test', 'oracle', 'oracle.py');

function available() {
  return fs.existsSync(PYTHON);
}

/**
 * Runs requests in one oracle process (pipelines are cached between them). Each request is the
 * oracle's JSON format; returns [{shape, data: Buffer} | {error}] in order.
 */
async function runOracle(requests) {
  if (!available()) throw new Error(`oracle python not found at ${PYTHON}; run \`bash test/oracle/setup.sh\``);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-oracle-'));
  const withOut = requests.map((r, i) => ({ ...r, out: path.join(dir, `${i}.rgb`) }));
  const child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdin.end(JSON.stringify({ requests: withOut }));
  const [code, signal] = await new Promise((resolve) => child.on('close', (c, sig) => resolve([c, sig])));
  const lines = stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  if (lines.length !== requests.length)
    throw new Error(`oracle answered ${lines.length} of ${requests.length} requests (exit ${code}, signal ${signal}):\n${stderr}`);
  const results = lines.map((line, i) =>
    line.error ? { error: line.error } : { shape: line.shape, data: fs.readFileSync(withOut[i].out) },
  );
  fs.rmSync(dir, { recursive: true, force: true });
  return results;
}

/** Largest absolute difference and the fraction of equal bytes. */
function compareBytes(a, b) {
  if (a.length !== b.length) return { maxDiff: Infinity, exact: 0 };
  let maxDiff = 0;
  let equal = 0;
  for (let i = 0; i < a.length; i += 1) {
    const d = Math.abs(a[i] - b[i]);
    if (d > maxDiff) maxDiff = d;
    if (d === 0) equal += 1;
  }
  return { maxDiff, exact: equal / a.length };
}

/** All images of a generation result, as one buffer. */
const pixels = (result) => Buffer.concat(result.images.map((im) => im.data));

/**
 * Our side of a parity case: `call` runs twice in a row on the same loaded model, and both images are compared
 * with the oracle's. A case must give the oracle's pixels on every call, not only the first after load (a CPU
 * plugin bug once made later LoRA calls drift on CPUs without AVX-512). Returns the first result, the worse of the
 * two comparisons, and `repeatDiff`, the largest difference between the two calls (0 is required).
 */
async function compareRepeated(call, expected) {
  const results = [await call(), await call()];
  const compared = results.map((r) => compareBytes(pixels(r), expected));
  return {
    result: results[0],
    maxDiff: Math.max(...compared.map((c) => c.maxDiff)),
    exact: Math.min(...compared.map((c) => c.exact)),
    repeatDiff: compareBytes(pixels(results[0]), pixels(results[1])).maxDiff,
  };
}

/** Prints a parity table (case, max diff, exact fraction, difference between repeated calls) to the test log. */
function printTable(title, rows) {
  const lines = [`${title}`, '| case | max |diff| | exact pixels | repeat |diff| |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.name} | ${r.maxDiff} | ${(r.exact * 100).toFixed(2)}% | ${r.repeatDiff ?? '-'} |`);
  console.log(lines.join('\n'));
}

/** Rows whose repeated calls differed: the same call on the same loaded model must give the same pixels. */
const unrepeatable = (rows) => rows.filter((r) => r.repeatDiff !== undefined && r.repeatDiff !== 0);

module.exports = { runOracle, compareBytes, compareRepeated, pixels, printTable, unrepeatable, available };
