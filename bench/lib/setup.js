'use strict';
// What a run needs before it measures: an up-to-date dist/ (and what it offers) and the openvino_genai oracle venv.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ORACLE_PYTHON, ROOT } = require('./workers');
const { log } = require('./log');

function ensureBuilt() {
  const dist = path.join(ROOT, 'dist', 'index.js');
  const newest = (dir) => {
    let t = 0;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      t = Math.max(t, entry.isDirectory() ? newest(p) : p.endsWith('.ts') ? fs.statSync(p).mtimeMs : 0);
    }
    return t;
  };
  const stale =
    !fs.existsSync(dist) ||
    !fs.existsSync(path.join(ROOT, 'dist', 'launcher', 'main.js')) ||
    newest(path.join(ROOT, 'lib')) > fs.statSync(dist).mtimeMs;
  if (!stale) return { rebuilt: false };
  log('dist/ is missing or older than lib/: compiling the TypeScript (tsc -p tsconfig.json)');
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) {
    log(`WARNING: tsc failed; benchmarking the existing dist/ (${(r.stdout + r.stderr).split('\n').slice(0, 3).join(' / ')})`);
    return { rebuilt: false, tscFailed: true };
  }
  return { rebuilt: true };
}

function ensureOracle() {
  if (fs.existsSync(ORACLE_PYTHON)) return true;
  log('the openvino_genai oracle venv is missing: creating it (bash test/oracle/setup.sh)');
  const r = spawnSync('bash', [path.join(ROOT, 'test', 'oracle', 'setup.sh')], { cwd: ROOT, stdio: 'inherit' });
  return r.status === 0 && fs.existsSync(ORACLE_PYTHON);
}

/** Our library's LoadOptions has a `reshape` option when dist/diffusion-model.d.ts declares it. */
function oursHasReshape() {
  try {
    return /\breshape\??:/.test(fs.readFileSync(path.join(ROOT, 'dist', 'diffusion-model.d.ts'), 'utf8'));
  } catch {
    return false;
  }
}

module.exports = { ensureBuilt, ensureOracle, oursHasReshape };
