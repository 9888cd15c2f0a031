'use strict';
// The package as its users reach it: the `exports` map (the library, and the HTTP app under ./server), a type check of
// the public API from a consumer's point of view, and the HTTP app mounted inside another Express app.
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const express = require('express');
const { ROOT, fixture } = require('./helpers/paths');

test('exports: the library and ./server resolve by the package name; internals do not', () => {
  const script = `
    const lib = require('ov-diffusion');
    const loadedExpress = Object.keys(require.cache).some((f) => f.includes('/node_modules/express/'));
    const server = require('ov-diffusion/server');
    let internal = 'resolved';
    try { require('ov-diffusion/dist/launcher/hub'); } catch (e) { internal = e.code; }
    console.log(JSON.stringify({ lib: typeof lib.DiffusionModel, server: typeof server.createApp, loadedExpress, internal }));`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    lib: 'function',
    server: 'function',
    loadedExpress: false,
    internal: 'ERR_PACKAGE_PATH_NOT_EXPORTED',
  });
});

test('the public API type-checks as a consumer uses it (test/types/consumer.ts)', () => {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'test', 'types', 'tsconfig.json')], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('the HTTP app mounts under a path of another Express app', async () => {
  const { createApp } = require('ov-diffusion/server');
  const { DiffusionModel } = require('ov-diffusion');
  const images = createApp({ models: [{ name: 'demo', model: DiffusionModel.load(fixture('sd15')) }] });
  const outer = express();
  outer.get('/', (_req, res) => res.send('my site'));
  outer.use('/ai', images);
  const server = outer.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  try {
    assert.equal(await (await fetch(`${url}/`)).text(), 'my site');
    const res = await fetch(`${url}/ai/v3/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo', prompt: 'a cat', num_inference_steps: 1, size: '64x64' }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.data.length, 1);
    assert.equal((await fetch(`${url}/ai/v3/models`)).status, 200);
  } finally {
    server.close();
    images.dispose();
  }
});

test('the package ships the demo model from models/ and no test files; DEMO_MODEL_DIR generates', async () => {
  const npm = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(npm.status, 0, npm.stderr);
  const files = JSON.parse(npm.stdout)[0].files.map((f) => f.path);
  assert.ok(files.includes('models/demo/model_index.json'), 'the demo model is in the package');
  assert.deepEqual(
    files.filter((f) => f.startsWith('test/')),
    [],
    'no test files are shipped',
  );
  const { DiffusionModel, DEMO_MODEL_DIR } = require('ov-diffusion');
  assert.equal(path.relative(ROOT, DEMO_MODEL_DIR), path.join('models', 'demo'));
  const demo = await DiffusionModel.load(DEMO_MODEL_DIR);
  const { images } = await demo.text2image('a big red circle on a white background', { numInferenceSteps: 1, width: 64, height: 64 });
  assert.equal(images.length, 1);
  assert.equal(images[0].width, 64);
  demo.dispose();
});

test('npm start: killing npm stops the server it started (no orphan keeps the port)', async () => {
  const npm = spawn('npm', ['start', '--', '--rest_port', '0', '--rest_bind_address', '127.0.0.1'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" line in 120 s:\n${log}`)), 120_000);
    const onData = (chunk) => {
      log += chunk;
      if (/listening on http/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    };
    npm.stdout.on('data', onData);
    npm.stderr.on('data', onData);
  });
  const descendants = (pid) => {
    const children = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number);
    return children.flatMap((c) => [c, ...descendants(c)]);
  };
  const started = descendants(npm.pid);
  assert.ok(started.length > 0, 'npm started the server');
  npm.kill('SIGTERM');
  const alive = (pid) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 30_000;
  while (started.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const left = started.filter(alive);
  // Whatever the verdict, nothing outlives the test (an orphan would also hold npm's output pipes open).
  for (const pid of left) process.kill(pid, 'SIGKILL');
  npm.stdout.destroy();
  npm.stderr.destroy();
  assert.deepEqual(left, [], 'every process npm started has exited');
});
