'use strict';
// The AVX2-only CPU of test/isa/avx2_cpu.c for child processes: built once into .cache/isa/, then given to children
// by LD_PRELOAD (with V8's WebAssembly trap handler off, since it would take the CPUID faults first). Used by the
// AVX2 test pass (test/isa/run.js) and by the bench's --isa avx2.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const PYTHON = process.env.ORACLE_PYTHON || path.join(ROOT, '.cache', 'oracle-venv', 'bin', 'python');

function cpuFlags() {
  const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const line = info.split('\n').find((l) => l.startsWith('flags'));
  return new Set((line || '').split(':')[1]?.trim().split(/\s+/) ?? []);
}

/** Compiles the shim: { path } or { error }. */
function buildShim() {
  const out = path.join(ROOT, '.cache', 'isa', 'avx2_cpu.so');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const cc = process.env.CC || 'cc';
  const r = spawnSync(cc, ['-O2', '-shared', '-fPIC', '-o', out, path.join(__dirname, 'avx2_cpu.c')], { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    return { error: `cannot compile test/isa/avx2_cpu.c with '${cc}' (${r.error?.message ?? r.stderr.trim()})` };
  return { path: out };
}

/** The environment under which a child process (node or python) sees the AVX2-only CPU. */
function shimEnv(shimPath, env = process.env) {
  return {
    ...env,
    LD_PRELOAD: [shimPath, env.LD_PRELOAD].filter(Boolean).join(':'),
    NODE_OPTIONS: [env.NODE_OPTIONS, '--disable-wasm-trap-handler'].filter(Boolean).join(' '),
  };
}

/** What the plugin runs with the shim loaded: { precision, primitives } or { error }. */
function probe(env) {
  const r = spawnSync(PYTHON, [path.join(__dirname, 'primitives.py')], { env, encoding: 'utf8' });
  if (r.status === 70) return { unavailable: r.stderr.trim() };
  if (r.status !== 0) return { error: `${path.basename(PYTHON)} primitives.py failed: ${r.stderr.trim().split('\n').pop()}` };
  return JSON.parse(r.stdout);
}

/**
 * An environment in which children run the CPU plugin's AVX2 path, checked from the plugin's executed graph:
 * { env, kernels } when emulated; { skip } where there is nothing to emulate or it cannot be done here (not x86-64
 * Linux, no AVX-512 to hide, no compiler, no CPUID faulting); { error } when the emulated CPU still took another path.
 */
function emulateAvx2() {
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return { skip: `CPU emulation by CPUID faulting needs Linux on x86-64 (this is ${process.platform}-${process.arch})` };
  if (!cpuFlags().has('avx512f')) return { skip: 'this CPU has no AVX-512, so it runs the AVX2 path itself' };
  const shim = buildShim();
  if (shim.error) return { skip: shim.error };
  const env = shimEnv(shim.path);
  const seen = probe(env);
  if (seen.unavailable) return { skip: seen.unavailable };
  if (seen.error) return { error: seen.error };
  const kernels = `precision ${seen.precision}; kernels ${seen.primitives.join(', ')}`;
  if (
    seen.primitives.some((p) => /avx512|amx/i.test(p)) ||
    !seen.primitives.some((p) => /avx2/.test(p)) ||
    !/float32|f32/.test(seen.precision)
  )
    return { error: `the emulated CPU did not take the AVX2 path: ${kernels}` };
  return { env, kernels };
}

module.exports = { emulateAvx2 };
