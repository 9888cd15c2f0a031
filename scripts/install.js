'use strict';
// npm install hook: provision the OpenVINO Runtime, then make sure a binding that loads and was
// built from these sources exists. The committed prebuild normally satisfies both, so nothing
// compiles; otherwise (other platform, edited native/ sources, --build-from-source) cmake-js builds.
const { spawnSync } = require('child_process');
const { provisionRuntime, ROOT } = require('./runtime');
const { nativeSourceHash } = require('./source-hash');

function log(message) {
  process.stderr.write(`ov-diffusion: ${message}\n`);
}

/** Returns why the current binding cannot be used, or null when it is fine. */
function bindingProblem() {
  // A child process, so a failed dlopen cannot poison this one and node-gyp-build's cache is fresh.
  const probe = `const b = require('node-gyp-build')(${JSON.stringify(ROOT)}); process.stdout.write(b.sourceHash());`;
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) return `no loadable binding (${(r.stderr || '').trim().split('\n').slice(-1)[0]})`;
  if (r.stdout.trim() !== nativeSourceHash()) return 'the binding was built from other native sources';
  return null;
}

function buildFromSource() {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    throw new Error(
      'building the native addon failed. It needs cmake >= 3.20 and a C++17 compiler ' +
        '(Debian: apt-get install cmake g++). Prebuilt binaries exist for: linux-x64, linux-arm64 (glibc).',
    );
  }
}

function main() {
  provisionRuntime();
  const forced = process.argv.includes('--build-from-source') || process.env.npm_config_build_from_source === 'true';
  const problem = forced ? 'a build from source was asked for' : bindingProblem();
  if (!problem) return;
  log(`${problem}; building from source with cmake-js`);
  buildFromSource();
  const after = bindingProblem();
  if (after) throw new Error(`the freshly built binding is not usable: ${after}`);
}

try {
  main();
} catch (e) {
  log(e.message);
  process.exit(1);
}
