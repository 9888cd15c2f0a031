#!/usr/bin/env node
'use strict';
// The SD UNet alone, in both runtimes: does one infer cost the same in our Node process (IrModel.infer() on a
// libuv worker thread) as in Python (openvino.CompiledModel, the runtime under openvino_genai)?
//   node bench/unet-only.js [--model dir] [--size WxH] [--repeat N] [--rounds R]
// Same IR, same properties (INFERENCE_NUM_THREADS = logical CPUs), same inputs (CFG batch 2, deterministic
// values), one warm-up infer per process; R rounds of one process per side, alternating, N timed infers each.
// Default model: .cache/bench-models/sd15-int8-random. Prints the times and the median ratio (ours / Python).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { ORACLE_PYTHON, ROOT } = require('./lib/workers');

const args = { model: path.join(ROOT, '.cache', 'bench-models', 'sd15-int8-random'), size: '512x512', repeat: 4, rounds: 2 };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!(key in args)) {
    console.error('usage: node bench/unet-only.js [--model dir] [--size WxH] [--repeat N] [--rounds R]');
    process.exit(2);
  }
  args[key] = key === 'model' ? path.resolve(process.argv[i + 1]) : process.argv[i + 1];
}
const xml = path.join(args.model, 'unet', 'openvino_model.xml');
if (!fs.existsSync(xml)) {
  console.error(`no UNet at ${xml}`);
  process.exit(2);
}
const config = JSON.parse(fs.readFileSync(path.join(args.model, 'unet', 'config.json'), 'utf8'));
const [width, height] = args.size.split('x').map(Number);
const shape = { sample: [2, config.in_channels || 4, height / 8, width / 8], hidden: [2, 77, config.cross_attention_dim || 768] };
const threads = os.availableParallelism();

// Inputs: sample[i] = sin(i), encoder_hidden_states[i] = 0.5 cos(i), timestep 500, computed the same way on both sides.
const OURS = `
const { IrModel } = require(${JSON.stringify(ROOT)});
const [xml, sampleShape, hiddenShape, threads, repeat] = JSON.parse(process.argv[1]);
const size = (s) => s.reduce((a, b) => a * b, 1);
(async () => {
  const model = await IrModel.load(xml, { properties: { INFERENCE_NUM_THREADS: threads } });
  const inputs = {
    sample: { type: 'f32', shape: sampleShape, data: new Float32Array(size(sampleShape)).map((_, i) => Math.sin(i)) },
    timestep: { type: 'i64', shape: [1], data: new BigInt64Array([500n]) },
    encoder_hidden_states: { type: 'f32', shape: hiddenShape, data: new Float32Array(size(hiddenShape)).map((_, i) => 0.5 * Math.cos(i)) },
  };
  await model.infer(inputs);
  const ms = [];
  for (let i = 0; i < repeat; i += 1) { const t = performance.now(); await model.infer(inputs); ms.push(performance.now() - t); }
  console.log(JSON.stringify(ms));
})();`;
const PYTHON = `
import json, os, sys, time
import numpy as np, openvino as ov
xml, sample_shape, hidden_shape, threads, repeat = json.loads(sys.argv[1])
m = ov.Core().compile_model(xml, 'CPU', {'INFERENCE_NUM_THREADS': str(threads)})
r = m.create_infer_request()
n = lambda s: int(np.prod(s))
inputs = {'sample': ov.Tensor(np.sin(np.arange(n(sample_shape), dtype=np.float64)).astype(np.float32).reshape(sample_shape)),
          'timestep': ov.Tensor(np.array([500], dtype=np.int64)),
          'encoder_hidden_states': ov.Tensor((0.5 * np.cos(np.arange(n(hidden_shape), dtype=np.float64))).astype(np.float32).reshape(hidden_shape))}
r.infer(inputs)
ms = []
for _ in range(repeat):
    t = time.perf_counter(); r.infer(inputs); ms.append((time.perf_counter() - t) * 1000)
print(json.dumps(ms))
`;
const spec = JSON.stringify([xml, shape.sample, shape.hidden, threads, Number(args.repeat)]);
const times = { ours: [], python: [] };
for (let round = 0; round < Number(args.rounds); round += 1) {
  for (const side of round % 2 === 0 ? ['ours', 'python'] : ['python', 'ours']) {
    const r =
      side === 'ours'
        ? spawnSync(process.execPath, ['-e', OURS, spec], { encoding: 'utf8' })
        : spawnSync(ORACLE_PYTHON, ['-c', PYTHON, spec], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.error(`${side} failed: ${r.stderr}`);
      process.exit(1);
    }
    const ms = JSON.parse(r.stdout.trim().split('\n').pop());
    times[side].push(...ms);
    console.log(`round ${round + 1} ${side.padEnd(6)} ${ms.map((x) => x.toFixed(0)).join(' ')} ms`);
  }
}
const median = (a) => {
  const s = a.slice().sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
console.log(
  `UNet ${shape.sample.join('x')}, ${threads} threads: ours median ${median(times.ours).toFixed(0)} ms, Python median ${median(times.python).toFixed(0)} ms, ` +
    `ratio ${(median(times.ours) / median(times.python)).toFixed(3)}`,
);
