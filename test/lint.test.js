'use strict';
// Lint is part of the test suite: ESLint (typescript-eslint) and Prettier for TS/JS, the pinned clang-format for
// C++ (`npm run format` fixes what the last two report), and the engine rule that inputs are never bound by pointer.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ROOT, PRETTIER_GLOBS, CLANG_FORMAT, cppSources } = require('../scripts/lint-targets');

function run(command, args) {
  const r = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

test('ESLint reports nothing', () => {
  const r = run(process.execPath, [path.join(ROOT, 'node_modules', 'eslint', 'bin', 'eslint.js'), '--max-warnings', '0', '.']);
  assert.equal(r.status, 0, r.output);
});

test('Prettier finds every TS/JS file formatted', () => {
  const r = run(process.execPath, [require.resolve('prettier/bin/prettier.cjs'), '--check', '--log-level', 'warn', ...PRETTIER_GLOBS]);
  assert.equal(r.status, 0, `${r.output}\nrun \`npm run format\``);
});

test('clang-format finds every C++ file formatted', (t) => {
  if (!fs.existsSync(CLANG_FORMAT)) return t.skip(`${CLANG_FORMAT} is missing: run \`bash test/oracle/setup.sh\``);
  const r = run(CLANG_FORMAT, ['--dry-run', '--Werror', ...cppSources()]);
  assert.equal(r.status, 0, `${r.output}\nrun \`npm run format\``);
});

test("the engine never binds a caller's buffer to a model input (docs/lora.md: stale LoRA inputs)", () => {
  const offenders = cppSources(path.join(ROOT, 'native', 'engine')).filter((file) =>
    fs
      .readFileSync(path.join(ROOT, file), 'utf8')
      .split('\n')
      .some((line) => /(set_tensor|set_input_tensor)\s*\(/.test(line.replace(/\/\/.*$/, ''))),
  );
  assert.deepEqual(offenders, [], 'use Lease::input_buffer / write_input (native/engine/base/ir_model.hpp)');
});
