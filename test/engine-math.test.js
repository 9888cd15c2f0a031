'use strict';
// The engine's RNG, JSON, scheduler and guidance unit tests (native/engine/tests), compiled and run as-is.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { ROOT } = require('./helpers/paths');

test('RNG, JSON, scheduler and guidance math (native/engine/tests/engine_math_test.cpp)', (t) => {
  const cxx = process.env.CXX || 'g++';
  if (spawnSync(cxx, ['--version']).status !== 0) return t.skip(`${cxx} is not installed`);
  const engine = path.join(ROOT, 'native', 'engine');
  const binary = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-math-')), 'engine_math_test');
  const sources = [
    'base/json.cpp',
    'base/random_generator.cpp',
    'pipelines/guidance.cpp',
    ...fs.readdirSync(path.join(engine, 'schedulers')).map((f) => `schedulers/${f}`),
  ]
    .filter((f) => f.endsWith('.cpp'))
    .map((f) => path.join(engine, f));
  const build = spawnSync(
    cxx,
    [
      '-std=c++17',
      '-O2',
      '-Wall',
      '-Wextra',
      '-Werror',
      `-I${engine}`,
      ...sources,
      path.join(engine, 'tests', 'engine_math_test.cpp'),
      '-o',
      binary,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(build.status, 0, build.stderr);
  const run = spawnSync(binary, [], { encoding: 'utf8' });
  const summary = run.stdout.trim().split('\n').pop();
  assert.equal(run.status, 0, run.stdout.slice(-2000));
  assert.match(summary, /^\d+ passed, 0 failed$/);
});
