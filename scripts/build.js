'use strict';
// `npm run build` (and `prepare`): dist/ from lib/ alone. dist/ is emptied first, so files of modules that were
// moved or deleted are never left behind (and never packed).
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
fs.rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'inherit' });
process.exit(r.status ?? 1);
