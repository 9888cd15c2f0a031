'use strict';
// Hash of the native sources (native/** and CMakeLists.txt). CMakeLists.txt computes the same
// value at configure time and bakes it into the addon, so a test can tell whether the committed
// prebuild was built from the sources in this tree.
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const SOURCE_EXTENSIONS = new Set(['.cpp', '.hpp', '.h', '.cc', '.txt']);

function listNativeSources(root = ROOT) {
  const found = [];
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (SOURCE_EXTENSIONS.has(path.extname(entry.name))) found.push(path.relative(root, full).split(path.sep).join('/'));
    }
  };
  walk(path.join(root, 'native'));
  found.push('CMakeLists.txt');
  return found.sort();
}

/** sha256 over "relative/path\n<sha256 of content>\n" for every source, in sorted order. */
function nativeSourceHash(root = ROOT) {
  const outer = crypto.createHash('sha256');
  for (const rel of listNativeSources(root)) {
    const inner = crypto
      .createHash('sha256')
      .update(fs.readFileSync(path.join(root, rel)))
      .digest('hex');
    outer.update(`${rel}\n${inner}\n`);
  }
  return outer.digest('hex');
}

module.exports = { nativeSourceHash, listNativeSources };

if (require.main === module) console.log(nativeSourceHash());
