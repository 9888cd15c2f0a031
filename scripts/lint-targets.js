'use strict';
// What the linters and formatters cover: one list for `npm run lint` (test/lint.test.js) and `npm run format`.
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
/** Prettier globs (TypeScript and JavaScript). */
const PRETTIER_GLOBS = ['lib/**/*.ts', 'bin/**/*.js', 'scripts/**/*.js', 'test/**/*.js', 'bench/**/*.js', '*.mjs'];
const CLANG_FORMAT = path.join(ROOT, '.cache', 'oracle-venv', 'bin', 'clang-format');

/** Every C++ source under native/, relative to the package root. */
function cppSources(dir = path.join(ROOT, 'native')) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return cppSources(full);
    return /\.(cpp|hpp|h)$/.test(entry.name) ? [path.relative(ROOT, full)] : [];
  });
}

module.exports = { ROOT, PRETTIER_GLOBS, CLANG_FORMAT, cppSources };
