#!/usr/bin/env node
'use strict';
// Peak memory under different glibc allocator settings (docs/benchmarks.md, "Memory: glibc's mmap threshold"):
//   node bench/allocator.js [--model dir] [--steps N] [--out file.json]
//
// Each setting runs in a fresh process (allocator settings are process-wide and glibc reads its MALLOC_*
// variables at start-up): load the model, run two text-to-image generations at the model's default size, and
// report the load time, VmRSS after load and VmHWM (peak RSS) at the end, with the step times and the minor page faults of each
// generation (each fault is a page the kernel had to map and zero: the CPU cost of returning memory to the OS). Ours runs with our default
// (OV_DIFFUSION_MALLOC_MMAP_THRESHOLD unset), with it off (glibc's dynamic threshold), with other fixed
// thresholds and with MALLOC_ARENA_MAX=2; openvino_genai runs with glibc's defaults, as its users get it.
// Default model: .cache/bench-models/sd15-int8-random (scripts/bench-models/make-sd15-random-int8.sh).
// Writes a markdown table to stdout and JSON to bench/results/allocator.json (or --out).
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ORACLE_PYTHON, ROOT } = require('./lib/workers');

function parseArgs(argv) {
  const args = {
    model: path.join(ROOT, '.cache', 'bench-models', 'sd15-int8-random'),
    steps: 2,
    out: path.join(ROOT, 'bench', 'results', 'allocator.json'),
  };
  for (let i = 0; i < argv.length; i += 1) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (key === '--model') args.model = path.resolve(value);
    else if (key === '--steps') args.steps = Number(value);
    else if (key === '--out') args.out = path.resolve(value);
    else {
      console.error(`unknown option ${key}\nusage: node bench/allocator.js [--model dir] [--steps N] [--out file.json]`);
      process.exit(2);
    }
    i += 1;
  }
  return args;
}

// Both child programs print one JSON line: {loadRssMiB, peakRssMiB, stepMs: [...per generation median]}.
const MEMORY = String.raw`
const status = () => require('fs').readFileSync('/proc/self/status', 'utf8');
const mib = (key) => Number(new RegExp(key + ':\\s+(\\d+)').exec(status())[1]) / 1024;`;
const OURS = `${MEMORY}
const lib = require(${JSON.stringify(ROOT)});
(async () => {
  const start = performance.now();
  const model = await lib.DiffusionModel.load(process.argv[1], { properties: { INFERENCE_NUM_THREADS: require('os').availableParallelism() } });
  const loadMs = performance.now() - start;
  const loadRssMiB = mib('VmRSS');
  const stepMs = [];
  const faults = [];
  for (let i = 0; i < 2; i += 1) {
    const before = process.resourceUsage().minorPageFault;
    const r = await model.text2image('a photo of an astronaut riding a horse on mars', { numInferenceSteps: Number(process.argv[2]), rngSeed: 42 });
    faults.push(process.resourceUsage().minorPageFault - before);
    const s = r.metrics.stepMs.slice().sort((a, b) => a - b);
    stepMs.push(s[s.length >> 1]);
  }
  console.log(JSON.stringify({ loadMs, loadRssMiB, peakRssMiB: mib('VmHWM'), stepMs, faults, allocator: lib.allocatorTuning() }));
})().catch((e) => { console.error(e); process.exit(1); });`;
const ORACLE = `
import json, os, re, resource, sys, time
import openvino_genai as g
def mib(key):
    return int(re.search(key + r':\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024
start = time.perf_counter()
pipe = g.Text2ImagePipeline(sys.argv[1], 'CPU', INFERENCE_NUM_THREADS=str(os.cpu_count()))
load_ms = (time.perf_counter() - start) * 1000
load = mib('VmRSS')
steps = []
faults = []
for _ in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    pipe.generate('a photo of an astronaut riding a horse on mars', num_inference_steps=int(sys.argv[2]), rng_seed=42)
    s = sorted(x / 1000.0 for x in pipe.get_performance_metrics().raw_metrics.iteration_durations)
    steps.append(s[len(s) // 2])
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"loadMs": load_ms, "loadRssMiB": load, "peakRssMiB": mib('VmHWM'), "stepMs": steps, "faults": faults}))
`;

const SETTINGS = [
  { label: 'ours, default (threshold fixed at 4 MiB)', env: {} },
  { label: 'ours, OV_DIFFUSION_MALLOC_MMAP_THRESHOLD=off (glibc dynamic threshold)', env: { OV_DIFFUSION_MALLOC_MMAP_THRESHOLD: 'off' } },
  { label: 'ours, threshold fixed at 1 MiB', env: { OV_DIFFUSION_MALLOC_MMAP_THRESHOLD: String(1 << 20) } },
  { label: 'ours, threshold fixed at 16 MiB', env: { OV_DIFFUSION_MALLOC_MMAP_THRESHOLD: String(16 << 20) } },
  { label: 'ours, threshold fixed at 32 MiB', env: { OV_DIFFUSION_MALLOC_MMAP_THRESHOLD: String(32 << 20) } },
  { label: 'ours, dynamic threshold, MALLOC_ARENA_MAX=2', env: { OV_DIFFUSION_MALLOC_MMAP_THRESHOLD: 'off', MALLOC_ARENA_MAX: '2' } },
  { label: 'openvino_genai, glibc defaults', oracle: true, env: {} },
];

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(args.model, 'model_index.json'))) {
    console.error(`no model at ${args.model} (build it with scripts/bench-models/make-sd15-random-int8.sh or pass --model)`);
    process.exit(2);
  }
  const rows = [];
  for (const setting of SETTINGS) {
    const env = { ...process.env, ...setting.env };
    if (!('OV_DIFFUSION_MALLOC_MMAP_THRESHOLD' in setting.env)) delete env.OV_DIFFUSION_MALLOC_MMAP_THRESHOLD;
    const [cmd, argv] = setting.oracle ? [ORACLE_PYTHON, ['-c', ORACLE]] : [process.execPath, ['-e', OURS]];
    if (setting.oracle && !fs.existsSync(ORACLE_PYTHON)) {
      console.error('skipping openvino_genai: run bash test/oracle/setup.sh');
      continue;
    }
    process.stderr.write(`${setting.label} ... `);
    const r = spawnSync(cmd, [...argv, args.model, String(args.steps)], { env, encoding: 'utf8', cwd: ROOT });
    if (r.status !== 0) {
      console.error(`failed: ${r.stderr.trim().split('\n').slice(-3).join(' / ')}`);
      continue;
    }
    const result = JSON.parse(r.stdout.trim().split('\n').pop());
    process.stderr.write(`peak ${result.peakRssMiB.toFixed(0)} MiB\n`);
    rows.push({ ...setting, ...result });
  }
  const lines = [
    `Model ${path.relative(ROOT, args.model) || args.model}, load + 2 generations of ${args.steps} steps at its default size, one process per setting.`,
    '',
    '| Setting | load (ms) | RSS after load (MiB) | peak RSS, VmHWM (MiB) | step median, per generation (ms) | minor page faults, per generation |',
    '|---|---:|---:|---:|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.label} | ${r.loadMs.toFixed(0)} | ${r.loadRssMiB.toFixed(0)} | ${r.peakRssMiB.toFixed(0)} | ${r.stepMs.map((x) => x.toFixed(0)).join(', ')} | ${r.faults.join(', ')} |`,
    );
  }
  console.log(lines.join('\n'));
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(
    args.out,
    `${JSON.stringify({ date: new Date().toISOString(), model: args.model, steps: args.steps, rows }, null, 2)}\n`,
  );
}

main();
