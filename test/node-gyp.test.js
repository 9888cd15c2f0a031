'use strict';
// binding.gyp is node-gyp's path into the one CMake build: `node-gyp rebuild` in a copy of the package must produce
// an addon built from these sources that loads and runs. A copy, because node-gyp starts by deleting build/.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { nativeSourceHash } = require('../scripts/source-hash');

const ROOT = path.resolve(__dirname, '..');
// node-gyp ships with npm; Node's headers come with the distribution's nodejs package (Debian: /usr/include/node).
const NODE_DIR = path.resolve(path.dirname(process.execPath), '..');
const NODE_GYP = path.join(NODE_DIR, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const HEADERS = path.join(NODE_DIR, 'include', 'node', 'common.gypi');

function missingTools() {
  if (!fs.existsSync(NODE_GYP)) return `node-gyp is not where npm keeps it (${NODE_GYP})`;
  if (!fs.existsSync(HEADERS)) return `Node's headers are not installed (${HEADERS}; Debian: apt-get install nodejs-dev or libnode-dev)`;
  return null;
}

test(
  'node-gyp rebuild (binding.gyp) builds the same addon through cmake-js, and it loads and runs',
  { skip: missingTools() ?? false },
  () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-node-gyp-'));
    try {
      for (const entry of ['native', 'scripts', 'CMakeLists.txt', 'binding.gyp', 'package.json'])
        fs.cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
      for (const shared of ['node_modules', 'runtime']) fs.symlinkSync(path.join(ROOT, shared), path.join(copy, shared), 'dir');

      const build = spawnSync(process.execPath, [NODE_GYP, 'rebuild', `--nodedir=${NODE_DIR}`], { cwd: copy, encoding: 'utf8' });
      assert.equal(build.status, 0, `node-gyp rebuild failed:\n${build.stdout.slice(-3000)}\n${build.stderr.slice(-3000)}`);
      assert.ok(fs.existsSync(path.join(copy, 'build', 'Release', 'ov-diffusion.node')), 'the addon is where node-gyp-build looks');

      // Load it from the copy (node-gyp-build picks build/Release first) and run something through OpenVINO.
      const probe = [
        `const b = require('node-gyp-build')(${JSON.stringify(copy)});`,
        `process.stdout.write(JSON.stringify({ hash: b.sourceHash(), version: b.openvinoVersion(), devices: b.availableDevices() }));`,
      ].join('\n');
      const run = spawnSync(process.execPath, ['-e', probe], { cwd: copy, encoding: 'utf8' });
      assert.equal(run.status, 0, run.stderr);
      const loaded = JSON.parse(run.stdout);
      assert.equal(loaded.hash, nativeSourceHash(), 'built from the sources in this tree');
      assert.match(loaded.version, /^2026\./);
      assert.ok(loaded.devices.includes('CPU'));
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  },
);
