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
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const SUITES = [
  'lora',
  'deepcache',
  'repeatability',
  'text2image-parity',
  'edit-parity',
  'sd3-flux-parity',
  'reshape',
  'server-openai',
].map((name) => `test/${name}.test.js`);
const PYTHON = process.env.ORACLE_PYTHON || path.join(ROOT, '.cache', 'oracle-venv', 'bin', 'python');

function say(message) {
  console.log(`# lower-ISA run: ${message}`);
}

function cpuFlags() {
  const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const line = info.split('\n').find((l) => l.startsWith('flags'));
  return new Set((line || '').split(':')[1]?.trim().split(/\s+/) ?? []);
}

function buildShim() {
  const out = path.join(ROOT, '.cache', 'isa', 'avx2_cpu.so');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const cc = process.env.CC || 'cc';
  const r = spawnSync(cc, ['-O2', '-shared', '-fPIC', '-o', out, path.join(__dirname, 'avx2_cpu.c')], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    return { error: `cannot compile test/isa/avx2_cpu.c with '${cc}' (${r.error?.message ?? r.stderr.trim()})` };
  return { path: out };
}

/** What the plugin runs with the shim loaded: { precision, primitives } or { error }. */
function probe(env) {
  const r = spawnSync(PYTHON, [path.join(__dirname, 'primitives.py')], { env, encoding: 'utf8' });
  if (r.status === 70) return { unavailable: r.stderr.trim() };
  if (r.status !== 0) return { error: `${path.basename(PYTHON)} primitives.py failed: ${r.stderr.trim().split('\n').pop()}` };
  return JSON.parse(r.stdout);
}

function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    say(`skipped: CPU emulation by CPUID faulting needs Linux on x86-64 (this is ${process.platform}-${process.arch})`);
    return 0;
  }
  if (!cpuFlags().has('avx512f')) {
    say('nothing to do: this CPU has no AVX-512, so the main run already took the AVX2 path');
    return 0;
  }
  const shim = buildShim();
  if (shim.error) {
    say(`skipped: ${shim.error}`);
    return 0;
  }
  const env = {
    ...process.env,
    LD_PRELOAD: [shim.path, process.env.LD_PRELOAD].filter(Boolean).join(':'),
    // V8's WebAssembly trap handler would take the CPUID faults before the shim's handler.
    NODE_OPTIONS: [process.env.NODE_OPTIONS, '--disable-wasm-trap-handler'].filter(Boolean).join(' '),
  };
  const seen = probe(env);
  if (seen.unavailable) {
    say(`skipped: ${seen.unavailable}`);
    return 0;
  }
  if (seen.error) {
    console.error(`lower-ISA run: ${seen.error}`);
    return 1;
  }
  const avx512 = seen.primitives.filter((p) => /avx512|amx/i.test(p));
  if (avx512.length || !seen.primitives.some((p) => /avx2/.test(p)) || !/float32|f32/.test(seen.precision)) {
    console.error(
      `lower-ISA run: the emulated CPU did not take the AVX2 path: precision ${seen.precision}, kernels ${seen.primitives.join(', ')}`,
    );
    return 1;
  }
  say(`CPU emulated without AVX-512: precision ${seen.precision}; kernels ${seen.primitives.join(', ')}`);
  const files = process.argv.slice(2).length ? process.argv.slice(2) : SUITES;
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: ROOT, env, stdio: 'inherit' });
  return r.status ?? 1;
}

process.exitCode = main();
