'use strict';
// The foundation: runtime provisioning, the native binding, the prebuild, worker-thread inference.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const ovd = require('..');
const { ROOT, fixture } = require('./helpers/paths');
const { nativeSourceHash } = require('../scripts/source-hash');
const pins = require('../package.json').openvino;

const TEXT_ENCODER = path.join(fixture('sd15'), 'text_encoder', 'openvino_model.xml');

test('the binding reports the pinned OpenVINO release and the CPU device', () => {
  assert.ok(ovd.openvinoVersion().startsWith(`${pins.openvino}-`), ovd.openvinoVersion());
  assert.ok(ovd.availableDevices().includes('CPU'));
});

test('the committed prebuild was built from the native sources in this tree', () => {
  const prebuild = path.join(ROOT, 'prebuilds', `${process.platform}-${process.arch}`, 'ov-diffusion.node');
  assert.ok(fs.existsSync(prebuild), `missing ${prebuild}`);
  const loaded = { exports: {} };
  process.dlopen(loaded, prebuild);
  assert.equal(
    loaded.exports.sourceHash(),
    nativeSourceHash(),
    'prebuilds/ is stale: run `npm run prebuildify` after changing native/ or CMakeLists.txt',
  );
});

test('the prebuild finds OpenVINO through a RUNPATH relative to itself', () => {
  const r = spawnSync('readelf', ['-d', path.join(ROOT, 'prebuilds', 'linux-x64', 'ov-diffusion.node')], { encoding: 'utf8' });
  if (r.error) return test.skip?.('readelf not installed');
  assert.match(r.stdout, /RUNPATH.*\[\$ORIGIN\/\.\.\/\.\.\/runtime\/site-packages\/openvino\/libs\]/);
  assert.doesNotMatch(r.stdout, /\/work\/|\/tmp\//, 'no build path leaks into the dynamic section');
});

test('the binding loads in a process with no LD_LIBRARY_PATH', () => {
  const env = { ...process.env };
  delete env.LD_LIBRARY_PATH;
  const r = spawnSync(process.execPath, ['-e', "console.log(require('.').openvinoVersion())"], { cwd: ROOT, env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${pins.openvino.replace(/\./g, '\\.')}-`));
});

test('the allocator gets a fixed mmap threshold before the first load, unless opted out', () => {
  const report = (value) => {
    const env = { ...process.env };
    if (value === undefined) delete env.OV_DIFFUSION_MALLOC_MMAP_THRESHOLD;
    else env.OV_DIFFUSION_MALLOC_MMAP_THRESHOLD = value;
    const r = spawnSync(process.execPath, ['-e', "console.log(JSON.stringify(require('.').allocatorTuning()))"], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  assert.deepEqual(report(undefined), { applied: true, mmapThreshold: 4 * 1024 * 1024, reason: '' });
  assert.deepEqual(report('1048576'), { applied: true, mmapThreshold: 1048576, reason: '' });
  for (const off of ['0', 'off'])
    assert.deepEqual(report(off), { applied: false, mmapThreshold: 0, reason: 'disabled by OV_DIFFUSION_MALLOC_MMAP_THRESHOLD' });
  for (const bad of ['lots', '99999999999', '12abc']) {
    const r = report(bad);
    assert.equal(r.applied, false);
    assert.match(r.reason, new RegExp(`ignored OV_DIFFUSION_MALLOC_MMAP_THRESHOLD='${bad}'`));
  }
});

test('an OV_DIFFUSION_OPENVINO_DIR without OpenVINO is refused with the fix', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-empty-'));
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'runtime.js')], {
    cwd: ROOT,
    env: { ...process.env, OV_DIFFUSION_OPENVINO_DIR: empty },
    encoding: 'utf8',
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /lacks:/);
  assert.match(r.stderr, new RegExp(`libopenvino\\.so\\.${require('../scripts/runtime').libraryTag(pins.openvino)}`));
  assert.match(r.stderr, /python3/);
});

test('without an installed runtime the library says how to install it (it reads the installer manifest, not scripts/)', () => {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-no-runtime-'));
  fs.cpSync(path.join(ROOT, 'dist'), path.join(copy, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(copy, 'package.json'));
  const probe = `try { require('./dist/binding').binding(); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: copy, encoding: 'utf8' });
  fs.rmSync(copy, { recursive: true, force: true });
  const error = JSON.parse(r.stdout);
  assert.equal(error.code, 'ERR_BINDING');
  assert.match(error.message, /OpenVINO Runtime is not installed.*openvino-runtime\.json.*npm rebuild ov-diffusion/s);
});

test('an IR model loads, compiles and infers on a worker thread', async () => {
  const model = await ovd.IrModel.load(TEXT_ENCODER, { device: 'CPU' });
  assert.deepEqual(
    model.inputs.map((p) => p.name),
    ['input_ids'],
  );
  assert.ok(model.compileMs > 0);
  // A large batch keeps the worker busy long enough for the event loop to turn meanwhile.
  const batch = 256;
  const ids = new BigInt64Array(batch * 77).fill(5n);
  let ticks = 0;
  let settled = false;
  const tick = () => {
    if (!settled) {
      ticks += 1;
      setImmediate(tick);
    }
  };
  const pending = model.infer({ input_ids: { type: 'i64', shape: [batch, 77], data: ids } });
  setImmediate(tick);
  const out = await pending;
  settled = true;
  assert.ok(ticks > 0, 'the event loop turned while inference ran');
  assert.deepEqual(out.last_hidden_state.shape, [batch, 77, 32]);
  assert.equal(out.last_hidden_state.type, 'f32');
  // Same ids in every row: every row's output is the same, and not all zeros.
  const rows = out.last_hidden_state.data;
  const row = 77 * 32;
  assert.deepEqual(rows.subarray(0, row), rows.subarray(row * (batch - 1)));
  assert.ok(rows.subarray(0, row).some((v) => v !== 0));
  model.dispose();
});

test('native errors become JS errors with stable codes', async () => {
  await assert.rejects(ovd.IrModel.load('/no/such/model.xml'), { code: 'ERR_MODEL_NOT_FOUND', message: /\/no\/such\/model\.xml/ });
  await assert.rejects(ovd.IrModel.load(TEXT_ENCODER, { device: 'NO_SUCH_DEVICE' }), { code: 'ERR_RUNTIME', message: /NO_SUCH_DEVICE/ });
  const model = await ovd.IrModel.load(TEXT_ENCODER);
  await assert.rejects(model.infer({ wrong: { type: 'i64', shape: [1, 77], data: new BigInt64Array(77) } }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /no input named 'wrong'/,
  });
  await assert.rejects(model.infer({ input_ids: { type: 'f32', shape: [1, 77], data: new Float32Array(77) } }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /expects i64/,
  });
  await assert.rejects(model.infer({ input_ids: { type: 'i64', shape: [1, 77], data: new BigInt64Array(3) } }), {
    code: 'ERR_INVALID_ARGUMENT',
    message: /bytes/,
  });
  const broken = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-ir-')), 'broken.xml');
  fs.writeFileSync(broken, '<net><layers>');
  await assert.rejects(ovd.IrModel.load(broken), { code: 'ERR_UNSUPPORTED_MODEL' });
  model.dispose();
  assert.throws(() => model.infer({}), { code: 'ERR_DISPOSED' });
});
