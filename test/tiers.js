'use strict';
// Test tiers: `npm run test:unit` (seconds: lint, maths, the server on fake models), `test:native` (the real engine
// on the tiny fixtures), `test:parity` (against the openvino_genai oracle); `npm test` runs every tier, then the
// parity suites again on the AVX2 path (test/isa/run.js). Every test file belongs to exactly one tier: a new file
// that is not listed here fails the run rather than being skipped.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const TIERS = {
  unit: [
    'lint',
    'engine-math',
    'shape-judge',
    'server-cli',
    'server-features',
    'server-routes',
    'server-bad-input',
    'server-memory',
    'server-jobs',
    'deploy-docker',
    'deploy-chart',
  ],
  native: [
    'foundation',
    'node-gyp',
    'compile-cache',
    'pipeline-api',
    'parameters',
    'package-api',
    'tarball',
    'repeatability',
    'server-openai-features',
    'server-pull',
    'server-sd3-flux',
    'server-zimage',
    'server-flux2-klein',
    'server-qwen-image',
    'server-limits',
    'server-jobs-engine',
    'server-faults',
    'deploy-nginx',
    'deepcache',
    'linux-arm64',
    'demo-model',
    'playground-browser',
  ],
  parity: [
    'fixtures-in-oracle',
    'text2image-parity',
    'edit-parity',
    'sd3-flux-parity',
    'zimage-parity',
    'flux2-klein-parity',
    'qwen-image-parity',
    'reshape',
    'lora',
    'server-openai',
  ],
};

const dir = __dirname;
const onDisk = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => f.replace(/\.test\.js$/, ''));
const listed = Object.values(TIERS).flat();
const unlisted = onDisk.filter((name) => !listed.includes(name));
const missing = listed.filter((name) => !onDisk.includes(name));
if (unlisted.length || missing.length) {
  console.error(`test/tiers.js: not in a tier: ${unlisted.join(', ') || '-'}; listed but missing: ${missing.join(', ') || '-'}`);
  process.exit(1);
}

const wanted = process.argv[2] ?? 'all';
if (wanted !== 'all' && !TIERS[wanted]) {
  console.error(`usage: node test/tiers.js [${Object.keys(TIERS).join('|')}|all]`);
  process.exit(2);
}
const names = wanted === 'all' ? listed : TIERS[wanted];
const files = names.map((name) => path.join('test', `${name}.test.js`));
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: path.join(dir, '..'), stdio: 'inherit' });
process.exit(r.status ?? 1);
