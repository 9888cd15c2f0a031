'use strict';
// One small text-to-image call straight on the native addon, for comparing architectures: the same script runs under
// the x64 node with the x64 prebuild and, under qemu-aarch64, with an aarch64 node and the arm64 prebuild.
// It uses only node-gyp-build and the addon (no lib/, so no sharp), which is what has to work on a new platform.
//
//   node generate-probe.js <package dir> <model dir> <out.json>
// The package dir needs prebuilds/<platform>-<arch>/ov-diffusion.node, runtime/site-packages/ for that architecture
// and node_modules/node-gyp-build. Writes {arch, prebuild, sourceHash, openvino, width, height, steps, ms, loadMs,
// metrics (the engine's), rgb (base64)}.
const fs = require('fs');
const path = require('path');

const [pkgDir, modelDir, outFile] = process.argv.slice(2);
if (!outFile) {
  console.error('usage: node generate-probe.js <package dir> <model dir> <out.json>');
  process.exit(2);
}
const root = path.resolve(pkgDir);
const nodeGypBuild = require(path.join(root, 'node_modules', 'node-gyp-build'));
// The file node-gyp-build picks on this machine (the point: it must be prebuilds/linux-arm64 on arm64).
const prebuild = nodeGypBuild.resolve(root);
const native = nodeGypBuild(root);
native.loadTokenizersExtension(path.join(root, 'runtime', 'site-packages', 'openvino_tokenizers', 'lib', 'libopenvino_tokenizers.so'));

(async () => {
  const loadStarted = Date.now();
  const model = await native.DiffusionModel.load(path.resolve(modelDir), {}, {}, { adapters: [], mode: 'dynamic' });
  const loadMs = Date.now() - loadStarted;
  const params = { prompt: 'a photo of a cat', width: 64, height: 64, num_inference_steps: 2, rng_seed: 42 };
  const { request } = model.prepare('text2image', params, {});
  const started = Date.now();
  const result = await model.generate(request, undefined, 0).promise;
  const ms = Date.now() - started;
  model.dispose();
  fs.writeFileSync(
    outFile,
    JSON.stringify({
      arch: process.arch,
      prebuild: path.relative(root, prebuild),
      sourceHash: native.sourceHash(),
      openvino: native.openvinoVersion(),
      width: result.width,
      height: result.height,
      count: result.count,
      steps: result.steps,
      askedSteps: params.num_inference_steps,
      ms,
      loadMs,
      metrics: result.metrics,
      rgb: Buffer.from(result.data).toString('base64'),
    }),
  );
  console.log(
    `${process.arch}: ${result.width}x${result.height}, ${result.steps} steps in ${ms} ms (load ${loadMs} ms) with ${path.relative(root, prebuild)}`,
  );
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
