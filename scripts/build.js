'use strict';
// `npm run build` (and `prepare`): dist/ from lib/ alone. dist/ is emptied first, so files of modules that were
// moved or deleted are never left behind (and never packed). The playground page (lib/playground/, browser
// TypeScript with its own tsconfig) goes to dist/playground/ with its HTML and CSS.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const PLAYGROUND = path.join(ROOT, 'lib', 'playground');
fs.rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
for (const project of [path.join(ROOT, 'tsconfig.json'), path.join(PLAYGROUND, 'tsconfig.json')]) {
  const r = spawnSync(process.execPath, [tsc, '-p', project], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
for (const file of fs.readdirSync(PLAYGROUND).filter((f) => /\.(html|css)$/.test(f)))
  fs.copyFileSync(path.join(PLAYGROUND, file), path.join(ROOT, 'dist', 'playground', file));
