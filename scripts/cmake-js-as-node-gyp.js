#!/usr/bin/env node
'use strict';
// Bridges node-gyp-shaped callers to the one canonical CMake build.
//  - prebuildify calls `<this> rebuild --target=<node> --devdir=... --arch=x64 --release`; that becomes
//    `cmake-js rebuild --arch=x64 --config Release` (Node-API builds need neither target nor devdir).
//  - binding.gyp's action calls `<this> --from-gyp <PRODUCT_DIR>`: build with cmake-js into build/cmake
//    (node-gyp owns build/), then copy the addon into node-gyp's product dir.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');

function run(args) {
  const r = spawnSync(process.execPath, [cmakeJs, ...args], { stdio: 'inherit', cwd: ROOT });
  if (r.status !== 0) process.exit(r.status === null ? 1 : r.status);
}

const argv = process.argv.slice(2);
const fromGyp = argv.indexOf('--from-gyp');
if (fromGyp >= 0) {
  const productDir = path.resolve(argv[fromGyp + 1]);
  const out = path.join(ROOT, 'build', 'cmake');
  run(['compile', '--out', out]);
  fs.mkdirSync(productDir, { recursive: true });
  fs.copyFileSync(path.join(out, 'Release', 'ov-diffusion.node'), path.join(productDir, 'ov-diffusion.node'));
} else {
  const args = ['rebuild'];
  for (const arg of argv) {
    if (arg.startsWith('--arch=')) args.push(arg);
    else if (arg === '--release') args.push('--config', 'Release');
    else if (arg === '--debug') args.push('--config', 'Debug');
  }
  run(args);
}
