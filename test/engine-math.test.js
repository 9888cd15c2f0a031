'use strict';
// The engine's own C++ unit tests (native/engine/tests), compiled with g++ and run as-is: RNG, JSON, scheduler and
// guidance math, and the solvers openvino_genai lacks against diffusers' recorded trajectories.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { ROOT } = require('./helpers/paths');
const { EXTRA_SOLVER_NAMES } = require('../dist/parameters');

const cxx = process.env.CXX || 'g++';
const engine = path.join(ROOT, 'native', 'engine');
const schedulers = fs.readdirSync(path.join(engine, 'schedulers')).map((f) => `schedulers/${f}`);

/** Compiles tests/<name>.cpp with the engine sources it needs, runs it with `args`, checks the "N passed, 0 failed" line. */
function runEngineTest(t, name, sources, args = []) {
  if (spawnSync(cxx, ['--version']).status !== 0) return t.skip(`${cxx} is not installed`);
  const binary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-math-')), name);
  const files = sources.filter((f) => f.endsWith('.cpp')).map((f) => path.join(engine, f));
  const build = spawnSync(
    cxx,
    ['-std=c++17', '-O2', '-Wall', '-Wextra', '-Werror', `-I${engine}`, ...files, path.join(engine, 'tests', `${name}.cpp`), '-o', binary],
    { encoding: 'utf8' },
  );
  assert.equal(build.status, 0, build.stderr);
  const run = spawnSync(binary, args, { encoding: 'utf8' });
  const summary = run.stdout.trim().split('\n').pop();
  assert.equal(run.status, 0, run.stdout.slice(-3000));
  assert.match(summary, /^[1-9]\d* passed, 0 failed$/);
  return run.stdout;
}

test('RNG, JSON, scheduler and guidance math (native/engine/tests/engine_math_test.cpp)', (t) => {
  runEngineTest(t, 'engine_math_test', ['base/json.cpp', 'base/random_generator.cpp', 'pipelines/guidance.cpp', ...schedulers]);
});

test('DPM-Solver++ 2M, UniPC and Heun follow diffusers to 1e-5 (native/engine/tests/scheduler_reference_test.cpp)', (t) => {
  const trajectories = path.join(ROOT, 'test', 'fixtures', 'scheduler-trajectories.json');
  const cases = JSON.parse(fs.readFileSync(trajectories, 'utf8')).cases;
  const out = runEngineTest(t, 'scheduler_reference_test', ['base/json.cpp', 'base/random_generator.cpp', ...schedulers], [trajectories]);
  if (out === undefined) return;
  // Every recorded case ran and every new scheduler name is covered.
  assert.match(out, new RegExp(`^${cases.length} passed, 0 failed$`, 'm'));
  const names = new Set(cases.map((c) => c.scheduler));
  for (const name of EXTRA_SOLVER_NAMES) assert.ok(names.has(name), `no trajectory for ${name}`);
});
