'use strict';
// npm run format: rewrites the TypeScript/JavaScript with Prettier and the C++ with the pinned clang-format.
const { spawnSync } = require('child_process');
const { ROOT, PRETTIER_GLOBS, CLANG_FORMAT, cppSources } = require('./lint-targets');

function run(command, args) {
  const r = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run(process.execPath, [require.resolve('prettier/bin/prettier.cjs'), '--write', '--log-level', 'warn', ...PRETTIER_GLOBS]);
run(CLANG_FORMAT, ['-i', ...cppSources()]);
