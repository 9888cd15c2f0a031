'use strict';
// The parity and repeatability suites once more on the CPU plugin's AVX2 path, on a machine whose CPU has AVX-512.
//
// Tests that pass only on the CPU they were written on are not done: the AVX-512 and AVX2 paths of the CPU plugin run
// other kernels, another default precision (BF16 where the CPU has it, else f32) and other graph fusions, and a LoRA
// bug once showed only on the AVX2 path. oneDNN's ONEDNN_MAX_CPU_ISA cannot emulate that CPU (the plugin reads CPUID
// itself and fails to compile), so this runs the suites under test/isa/avx2_cpu.c, which makes CPUID itself report
// an AVX2-only CPU to every library in the process (node, our engine and the openvino_genai oracle). Before the
// suites it checks, from the plugin's executed graph, that AVX2 kernels run and no AVX-512 one does.
//
// Usage: node test/isa/run.js [test files]      (default: the suites listed below)
// On a CPU without AVX-512 it does nothing: `npm test` itself ran on the AVX2 path. Where CPUID faulting or a C
// compiler is missing it says so and stops without failing.
const path = require('path');
const { spawnSync } = require('child_process');
const { emulateAvx2 } = require('./shim');

const ROOT = path.resolve(__dirname, '..', '..');
const SUITES = [
  'lora',
  'deepcache',
  'repeatability',
  'text2image-parity',
  'edit-parity',
  'sd3-flux-parity',
  'zimage-parity',
  'flux2-klein-parity',
  'qwen-image-parity',
  'demo-model',
  'reshape',
  'server-openai',
].map((name) => `test/${name}.test.js`);

function say(message) {
  console.log(`# lower-ISA run: ${message}`);
}

function main() {
  const emulated = emulateAvx2();
  if (emulated.skip) {
    say(`nothing to do or not possible here: ${emulated.skip}`);
    return 0;
  }
  if (emulated.error) {
    console.error(`lower-ISA run: ${emulated.error}`);
    return 1;
  }
  const { env } = emulated;
  say(`CPU emulated without AVX-512: ${emulated.kernels}`);
  const files = process.argv.slice(2).length ? process.argv.slice(2) : SUITES;
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: ROOT, env, stdio: 'inherit' });
  return r.status ?? 1;
}

process.exitCode = main();
