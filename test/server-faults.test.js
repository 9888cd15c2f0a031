'use strict';
// Faults while serving (issue 18), on the real engine and CLI: the model folder deleted under a running server, a
// corrupt or unwritable compile cache, SIGTERM during a streamed request, the disk filling (or the image folder vanishing) while
// url images are stored, a weight file rewritten or truncated in place under a loaded model (its weights are
// memory-mapped: once SIGBUS, now a refusal; during a call, by another process: the call stops, the writer waits),
// the process out of file descriptors (said in the log and /metrics). Each
// ends in a clear error or a resumed state, never a crash. And a
// pull killed with SIGKILL mid-file: nothing half-written is put in place or served, and the next run resumes.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { fixture, ROOT } = require('./helpers/paths');
const { startCli, withApp, parseSse, runCli: runCliFor } = require('./helpers/server-http');
const { fakeModel } = require('./helpers/server-fakes');
const { buildModelSettings } = require('../dist/server/settings');
const { createLogger } = require('../dist/server/log');

const MODEL = 'sd15';
const made = [];
const tmp = (name) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ovd-fault-${name}-`));
  made.push(dir);
  return dir;
};
test.after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

async function generate(url, body = {}) {
  const res = await fetch(`${url}/v1/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'p', size: '64x64', num_inference_steps: 2, ...body }),
  });
  return { status: res.status, text: await res.text() };
}

test('an unwritable compile cache: a warning at start, then the server generates (uncached)', async (t) => {
  // Root writes anywhere: as root the server runs as nobody (setpriv), otherwise the folder is made read-only.
  const asRoot = process.getuid?.() === 0;
  const prefix = asRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
  if (asRoot && spawnSync('setpriv', ['--version']).status !== 0) return t.skip('running as root without setpriv');
  // nobody must be able to read the checkout (not so under a private home folder)
  const readable = spawnSync(prefix[0] ?? 'true', [...prefix.slice(1), process.execPath, '-e', `require(${JSON.stringify(ROOT)})`]);
  if (asRoot && readable.status !== 0) return t.skip(`nobody cannot load the package from ${ROOT}`);
  const cache = path.join(tmp('readonly-cache'), 'cache');
  fs.mkdirSync(cache);
  if (asRoot) fs.chmodSync(path.dirname(cache), 0o755);
  else fs.chmodSync(cache, 0o555);
  const server = await startCli(['--model_name', MODEL, '--model_path', fixture('sd15'), '--cache_dir', cache], {
    prefix,
    env: { HOME: os.tmpdir() },
  });
  try {
    assert.match(server.output(), /\[warning\] 'sd15': the compile cache .* cannot be written \((EACCES|EPERM|EROFS)\)/);
    const res = await generate(server.url, { model: MODEL });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(fs.readdirSync(cache), [], 'nothing was written');
  } finally {
    await server.stop();
  }
});

test('the model folder deleted while serving: the loaded model goes on answering', async () => {
  const copy = path.join(tmp('folder'), 'sd15');
  fs.cpSync(fixture('sd15'), copy, { recursive: true });
  const server = await startCli(['--model_name', MODEL, '--model_path', copy]);
  try {
    assert.equal((await generate(server.url)).status, 200);
    fs.rmSync(copy, { recursive: true });
    for (let i = 0; i < 2; i++) {
      const res = await generate(server.url);
      assert.equal(res.status, 200, res.text);
    }
    assert.equal((await fetch(`${server.url}/v2/health/ready`)).status, 200);
  } finally {
    await server.stop();
  }
});

test('a corrupt compile cache (blobs cut in half, then overwritten with garbage): the server starts and generates', async () => {
  const cache = tmp('cache');
  const first = await startCli(['--model_name', MODEL, '--model_path', fixture('sd15'), '--cache_dir', cache]);
  assert.equal((await generate(first.url)).status, 200);
  await first.stop();
  const blobs = fs.readdirSync(cache).filter((f) => fs.statSync(path.join(cache, f)).isFile());
  assert.ok(blobs.length > 0, 'the first run wrote cache blobs');
  for (const damage of ['truncate', 'garbage']) {
    for (const blob of blobs) {
      const file = path.join(cache, blob);
      if (!fs.existsSync(file)) continue;
      const bytes = fs.readFileSync(file);
      fs.writeFileSync(file, damage === 'truncate' ? bytes.subarray(0, bytes.length >> 1) : Buffer.alloc(bytes.length, 0x5a));
    }
    const server = await startCli(['--model_name', MODEL, '--model_path', fixture('sd15'), '--cache_dir', cache]);
    try {
      const res = await generate(server.url);
      assert.equal(res.status, 200, `${damage}: ${res.text}`);
    } finally {
      await server.stop();
    }
  }
});

test('SIGTERM during a streamed request: within the grace time it completes; past it, an error event ends the stream; exit 0', async () => {
  for (const [grace, expected] of [
    ['20', 'completed'],
    ['0.2', 'error'],
  ]) {
    const server = await startCli(['--model_name', MODEL, '--model_path', fixture('sd15'), '--shutdown_timeout', grace]);
    const exited = new Promise((resolve) => server.child.once('exit', (code, signal) => resolve({ code, signal })));
    const response = await fetch(`${server.url}/v1/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        prompt: 'p',
        size: '64x64',
        num_inference_steps: expected === 'completed' ? 20 : 100,
        stream: true,
        partial_images: 1,
      }),
    });
    assert.equal(response.status, 200);
    const reader = response.body.getReader();
    let text = '';
    // Wait for the stream to be under way (its first bytes), then stop the server.
    const firstChunk = await reader.read();
    text += Buffer.from(firstChunk.value ?? []).toString('utf8');
    server.child.kill('SIGTERM');
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    const { events } = parseSse(text);
    const last = events.at(-1);
    if (expected === 'completed') assert.equal(last.data.type, 'image_generation.completed', `grace ${grace}: ${text.slice(0, 300)}`);
    else {
      assert.equal(last.data.type, 'error', `grace ${grace}: ${text.slice(0, 300)}`);
      assert.equal(last.data.error.code, 'shutting_down');
    }
    assert.deepEqual(await exited, { code: 0, signal: null }, server.output());
  }
});

test('url images: a temporary folder the server cannot write (read-only root without /tmp) is a 507 saying what to mount; b64_json still works', async () => {
  const notAFolder = path.join(tmp('tmpdir'), 'file');
  fs.writeFileSync(notAFolder, '');
  const saved = process.env.TMPDIR;
  await withApp([{ name: 'sd', model: fakeModel(), settings: buildModelSettings({}) }], async (url) => {
    process.env.TMPDIR = notAFolder; // mkdtemp under a file: ENOTDIR, as EROFS on a read-only root
    try {
      const refused = await generate(url, { response_format: 'url' });
      assert.equal(refused.status, 507, refused.text);
      const error = JSON.parse(refused.text).error;
      assert.equal(error.code, 'storage_unavailable');
      assert.equal(error.param, 'response_format');
      assert.match(
        error.message,
        /temporary folder .*file is not writable \(mount a writable \/tmp, e\.g\. --tmpfs \/tmp, or set TMPDIR\)/,
      );
      assert.equal((await generate(url)).status, 200, 'b64_json still works');
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    // Once the folder can be made, url images work: the failed attempt was not remembered.
    const works = await generate(url, { response_format: 'url' });
    assert.equal(works.status, 200, works.text);
  });
});

test('url images: a full disk is a 507 storage_full with no partial file; a deleted image folder is made again', async () => {
  const lines = [];
  const model = fakeModel();
  const models = [{ name: 'sd', model, settings: buildModelSettings({}) }];
  const realWrite = fs.promises.writeFile;
  await withApp(
    models,
    async (url, app) => {
      const first = await generate(url, { response_format: 'url' });
      assert.equal(first.status, 200, first.text);
      const dir = path.dirname(path.join(app.images.dir ?? '', 'x'));
      // The disk fills: the write stops part way with ENOSPC.
      fs.promises.writeFile = async (file, bytes) => {
        await realWrite(file, bytes.subarray(0, 10));
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      };
      let full;
      try {
        full = await generate(url, { response_format: 'url' });
      } finally {
        fs.promises.writeFile = realWrite;
      }
      assert.equal(full.status, 507, full.text);
      const error = JSON.parse(full.text).error;
      assert.equal(error.code, 'storage_full');
      assert.equal(error.param, 'response_format');
      assert.match(error.message, /b64_json/);
      assert.equal(fs.readdirSync(dir).length, 1, 'only the first image; no partial file');
      assert.equal((await generate(url)).status, 200, 'b64_json still works');
      // A tmp cleaner deletes the folder: the next url image makes a new one, and its link works.
      fs.rmSync(dir, { recursive: true });
      const again = await generate(url, { response_format: 'url' });
      assert.equal(again.status, 200, again.text);
      const link = JSON.parse(again.text).data[0].url;
      assert.equal((await fetch(link)).status, 200);
    },
    { logger: createLogger('INFO', (line) => lines.push(line)) },
  );
  assert.equal(lines.filter((l) => /\]\[error\] 507/.test(l)).length, 1, lines.join('\n'));
});

/**
 * Runs `script` in a child Node process (a crash there must not take the test runner with it) and collects what it
 * reported: one JSON [what, value] pair per stdout line. Fails if the child died of a signal (SIGBUS).
 */
function runReporting(script) {
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.signal, null, `the process died with ${r.signal}: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  return { r, seen: Object.fromEntries(lines.map((line) => JSON.parse(line))) };
}

test('a weight file changed in place under a loaded model: refused with ERR_MODEL_CHANGED, never SIGBUS; a file replaced by rename is harmless', () => {
  const copy = path.join(tmp('truncate'), 'sd15');
  fs.cpSync(fixture('sd15'), copy, { recursive: true });
  const unet = path.join(copy, 'unet', 'openvino_model.bin');
  const vae = path.join(copy, 'vae_decoder', 'openvino_model.bin');
  // In a child: before the guard, the truncation killed the process with SIGBUS.
  const script = `
    const fs = require('fs');
    const { DiffusionModel } = require(${JSON.stringify(ROOT)});
    const report = (what, value) => console.log(JSON.stringify([what, value]));
    const outcome = (p) => p.then((r) => Buffer.from(r.images[0].data).toString('base64'), (e) => e.code + ': ' + e.message);
    (async () => {
      const model = await DiffusionModel.load(${JSON.stringify(copy)});
      const run = () => outcome(model.text2image('p', { numInferenceSteps: 1, width: 64, height: 64, seed: 3 }));
      const before = await run();
      // Replaced, not rewritten: a new file renamed over the VAE's; the loaded weights live on in the mapping.
      fs.writeFileSync(${JSON.stringify(vae)} + '.new', 'not weights');
      fs.renameSync(${JSON.stringify(vae)} + '.new', ${JSON.stringify(vae)});
      report('after rename', (await run()) === before);
      // Rewritten in place with the same bytes: the modification time says it changed.
      const bytes = fs.readFileSync(${JSON.stringify(unet)});
      fs.writeFileSync(${JSON.stringify(unet)}, bytes);
      report('rewritten', await run());
      fs.truncateSync(${JSON.stringify(unet)}, 0);
      report('truncated', await run());
      // A model loaded again from the repaired folder runs.
      fs.writeFileSync(${JSON.stringify(unet)}, bytes);
      fs.cpSync(${JSON.stringify(fixture('sd15'))} + '/vae_decoder', ${JSON.stringify(path.dirname(vae))}, { recursive: true });
      const again = await DiffusionModel.load(${JSON.stringify(copy)});
      report('reloaded', (await outcome(again.text2image('p', { numInferenceSteps: 1, width: 64, height: 64, seed: 3 }))) === before);
    })();`;
  const { r, seen } = runReporting(script);
  assert.equal(seen['after rename'], true, r.stdout + r.stderr);
  assert.match(seen.rewritten, /^ERR_MODEL_CHANGED: .*unet\/openvino_model\.bin was rewritten after the model was loaded/);
  assert.match(seen.truncated, /^ERR_MODEL_CHANGED: .*unet\/openvino_model\.bin changed size \(\d+ -> 0 bytes\)/);
  assert.equal(seen.reloaded, true);
});

test('a weight file truncated by another process during a generation: the call stops with ERR_MODEL_CHANGED, the truncation waits for it, no SIGBUS', (t) => {
  const leases = fs.existsSync('/proc/sys/fs/leases-enable') ? fs.readFileSync('/proc/sys/fs/leases-enable', 'utf8').trim() : '0';
  if (leases !== '1') return t.skip('file leases are disabled on this machine (/proc/sys/fs/leases-enable)');
  const copy = path.join(tmp('truncate-running'), 'sd15');
  fs.cpSync(fixture('sd15'), copy, { recursive: true });
  const unet = path.join(copy, 'unet', 'openvino_model.bin');
  // The model reads the UNet's weights at every step; without the file's read lease the truncation below would cut the
  // file under the running call (SIGBUS at its next step). The lease makes the truncation wait until the call stopped.
  const script = `
    const { spawn } = require('child_process');
    const { DiffusionModel } = require(${JSON.stringify(ROOT)});
    const report = (what, value) => console.log(JSON.stringify([what, value]));
    const outcome = (p) => p.then(() => 'completed', (e) => e.code + ': ' + e.message);
    (async () => {
      const model = await DiffusionModel.load(${JSON.stringify(copy)});
      let started;
      const running = new Promise((resolve) => (started = resolve));
      let lastStep = -1;
      const call = outcome(model.text2image('p', { numInferenceSteps: 500, width: 64, height: 64, seed: 3,
        onStep: ({ step }) => { lastStep = step; if (step === 3) started(); } }));
      await Promise.race([running, call]);
      // truncate(2) waits for the lease (coreutils' truncate opens O_NONBLOCK and would fail with EAGAIN instead).
      const cut = new Promise((resolve) =>
        spawn(process.execPath, ['-e', 'require("fs").truncateSync(process.argv[1], 0)', ${JSON.stringify(unet)}], { stdio: 'inherit' }).on('exit', resolve));
      report('running call', await call);
      report('steps before the stop', lastStep);
      report('truncate exit', await cut);
      report('next call', await outcome(model.text2image('p', { numInferenceSteps: 1, width: 64, height: 64, seed: 3 })));
    })();`;
  const { r, seen } = runReporting(script);
  assert.match(
    seen['running call'],
    /^ERR_MODEL_CHANGED: .*unet\/openvino_model\.bin is being opened for writing by another process/,
    r.stdout + r.stderr,
  );
  assert.ok(seen['steps before the stop'] >= 3 && seen['steps before the stop'] < 499, r.stdout);
  assert.equal(seen['truncate exit'], 0, 'the truncation went ahead once the call had stopped');
  assert.equal(fs.statSync(unet).size, 0);
  assert.match(seen['next call'], /^ERR_MODEL_CHANGED: .*unet\/openvino_model\.bin changed size \(\d+ -> 0 bytes\)/);
});

test('over HTTP a model whose weights changed in place answers 503 model_changed, and the server stays up', async () => {
  const copy = path.join(tmp('truncate-http'), 'sd15');
  fs.cpSync(fixture('sd15'), copy, { recursive: true });
  const server = await startCli(['--model_name', 'sd', '--model_path', copy]);
  try {
    const first = await generate(server.url, { model: 'sd' });
    assert.equal(first.status, 200, first.text);
    fs.truncateSync(path.join(copy, 'unet', 'openvino_model.bin'), 0);
    const changed = await generate(server.url, { model: 'sd' });
    assert.equal(changed.status, 503, changed.text);
    const error = JSON.parse(changed.text).error;
    assert.equal(error.code, 'model_changed');
    assert.match(error.message, /openvino_model\.bin changed size/);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'still up');
  } finally {
    await server.stop();
  }
});

test('out of file descriptors: connections are dropped unanswered, and the server says so in its log and /metrics', async (t) => {
  if (spawnSync('prlimit', ['--version']).status !== 0) return t.skip('no prlimit (util-linux)');
  const LIMIT = 64;
  const server = await startCli(['--model_name', 'sd', '--model_path', fixture('sd15')], {
    prefix: ['prlimit', `--nofile=${LIMIT}:${LIMIT}`],
  });
  const idle = [];
  try {
    const metric = async (name) =>
      Number(new RegExp(`^ov_diffusion_${name} (\\d+)$`, 'm').exec(await (await fetch(`${server.url}/metrics`)).text())?.[1]);
    // Idle connections take the descriptors the limit leaves (libuv then closes each new one at once, unreported).
    const { port } = new URL(server.url);
    for (let i = 0; i < LIMIT; i++) {
      const socket = require('net').connect(Number(port), '127.0.0.1');
      socket.on('error', () => {});
      idle.push(socket);
    }
    const warned = /\]\[warning\] (all|\d+) of 64 file descriptors are open: at the limit, new connections are closed without an answer/;
    for (let i = 0; i < 80 && !warned.test(server.output()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(server.output(), warned);
    for (const socket of idle) socket.destroy();
    idle.length = 0;
    // Descriptors free again: it answers, and /metrics has the limit and the count.
    let health = 0;
    for (let i = 0; i < 50 && health !== 200; i++) {
      health = await fetch(`${server.url}/healthz`).then(
        (r) => r.status,
        () => 0,
      );
      if (health !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(health, 200);
    assert.equal(await metric('process_max_fds'), LIMIT);
    assert.ok((await metric('process_open_fds')) > 0);
  } finally {
    for (const socket of idle) socket.destroy();
    await server.stop();
  }
});

test('SIGKILL during a pull: no half-written model is in place or served; the next run resumes the file and serves', async () => {
  const { startHubServer } = require('./helpers/hub-server');
  const { CLI } = require('./helpers/server-http');
  const { spawn } = require('child_process');
  const REPO = 'OpenVINO/tiny-sd15-ov';
  const BIG = 'unet/openvino_model.bin';
  const repo = tmp('pull-kill');
  const target = path.join(repo, 'OpenVINO', 'tiny-sd15-ov');
  const stalled = await startHubServer({ [REPO]: fixture('sd15') }, { stall: { file: BIG, afterBytes: 200000 } });
  try {
    const child = spawn(process.execPath, [CLI, '--pull', '--source_model', REPO, '--model_repository_path', repo], {
      env: { ...process.env, HF_ENDPOINT: stalled.url },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    // Killed once the big file is part written.
    const part = path.join(repo, 'OpenVINO', '.tiny-sd15-ov.partial', `${BIG}.part`);
    for (let i = 0; i < 600 && !(fs.existsSync(part) && fs.statSync(part).size >= 200000); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(fs.existsSync(part), 'the download was under way');
    child.kill('SIGKILL');
    assert.deepEqual(await exited, { code: null, signal: 'SIGKILL' });
  } finally {
    await stalled.close();
  }
  assert.ok(!fs.existsSync(target), 'nothing is in place');
  const serveHalf = await runCliFor(['--model_name', 'half', '--model_path', target]);
  assert.equal(serveHalf.status, 2, serveHalf.stderr);
  assert.match(serveHalf.stderr, /does not exist/);

  const hub = await startHubServer({ [REPO]: fixture('sd15') });
  try {
    const server = await startCli(['--source_model', REPO, '--model_repository_path', repo], { env: { HF_ENDPOINT: hub.url } });
    try {
      const range = hub.downloads().find((d) => d.path.endsWith(BIG)).range;
      assert.match(range ?? '', /^bytes=\d+-$/, 'the file resumed where the killed run stopped');
      assert.ok(Number(/\d+/.exec(range)[0]) >= 200000);
      const res = await fetch(`${server.url}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'p', size: '64x64', num_inference_steps: 1 }),
      });
      assert.equal(res.status, 200, await res.text());
    } finally {
      await server.stop();
    }
  } finally {
    await hub.close();
  }
});
