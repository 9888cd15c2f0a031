'use strict';
// With a CACHE_DIR, unchanged submodels are compiled from their files, so a warm load imports the compiled blob
// without reading the weights (docs/benchmarks.md, "Load from a warm compile cache"). Observable: once the cache
// is warm, overwriting the UNet's weights (same size and mtime) does not change the pixels; when an option
// rewrites the UNet (static shapes), it is read again (and here fails to read).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { DiffusionModel } = require('..');
const { fixture } = require('./helpers/paths');

async function firstPixels(modelDir, options) {
  const model = await DiffusionModel.load(modelDir, options);
  try {
    const result = await model.text2image('a cat', { numInferenceSteps: 2, rngSeed: 1, width: 64, height: 64 });
    return Buffer.from(result.images[0].data);
  } finally {
    model.dispose();
  }
}

function overwriteKeepingStat(file) {
  const stat = fs.statSync(file);
  fs.writeFileSync(file, Buffer.alloc(stat.size, 0x3f));
  fs.utimesSync(file, stat.atime, stat.mtime);
}

test('a warm CACHE_DIR load of an unchanged model does not read its weights; a reshaped one does', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-cache-'));
  try {
    const modelDir = path.join(root, 'sd15');
    fs.cpSync(fixture('sd15'), modelDir, { recursive: true });
    const dynamic = { properties: { CACHE_DIR: path.join(root, 'cache-dynamic') } };
    const reshaped = {
      properties: { CACHE_DIR: path.join(root, 'cache-static') },
      reshape: { width: 64, height: 64, numImagesPerPrompt: 1, guidanceScale: 7.5 },
    };
    const before = { dynamic: await firstPixels(modelDir, dynamic), reshaped: await firstPixels(modelDir, reshaped) };
    overwriteKeepingStat(path.join(modelDir, 'unet', 'openvino_model.bin'));
    assert.ok((await firstPixels(modelDir, dynamic)).equals(before.dynamic), 'the cached UNet blob was not used as is');
    // The reshaped UNet is read again: the overwritten bytes include its shape constants, so reading fails.
    assert.ok(before.reshaped.length > 0);
    await assert.rejects(firstPixels(modelDir, reshaped), { code: 'ERR_UNSUPPORTED_MODEL', message: /cannot read model .*unet/ });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
