'use strict';
// The used-by path, as a new user takes it: `npm pack`, install the tarball into an empty project with no compiler
// involved, run the README's library example there, and start the bundled server and ask it for the README's first
// image. The OpenVINO Runtime comes from this checkout's runtime/ (OV_DIFFUSION_OPENVINO_DIR, the documented way to
// reuse an installation), so the test needs no second 185 MB download; dependencies come from npm's cache or registry.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const sharp = require('sharp');
const { ROOT } = require('./helpers/paths');

const README_EXAMPLE = /<!-- readme-example: first\.mjs -->\s*```js\n([\s\S]*?)```/;
const README_CURL_BODY = /-d '(\{"model": "demo"[^']*\})'/;

function run(command, args, options) {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 600_000, ...options });
  assert.equal(r.status, 0, `${command} ${args.join(' ')} failed:\n${(r.stdout ?? '').slice(-3000)}\n${(r.stderr ?? '').slice(-3000)}`);
  return r;
}

async function pngSize(bytes) {
  const meta = await sharp(bytes).metadata();
  assert.equal(meta.format, 'png');
  return `${meta.width}x${meta.height}`;
}

test('npm pack, install into an empty project without compiling, run the README example and the server', async () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const example = readme.match(README_EXAMPLE);
  const curlBody = readme.match(README_CURL_BODY);
  assert.ok(example, 'README.md has the first.mjs example');
  assert.ok(curlBody, "README.md has the first image's request");

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-tarball-'));
  try {
    const packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT }).stdout);
    const tarball = path.join(work, packed[0].filename);
    const files = packed[0].files.map((f) => f.path);
    for (const wanted of [
      'README.md',
      'LICENSE',
      'models/demo/model_index.json',
      'dist/index.js',
      'dist/playground/index.html',
      'dist/playground/main.js',
      'prebuilds/linux-x64/ov-diffusion.node',
      'prebuilds/linux-arm64/ov-diffusion.node',
    ])
      assert.ok(files.includes(wanted), `the package has ${wanted}`);
    assert.ok(files.includes('docs/server.md'), 'the docs that --help and the log point to are shipped');
    // Every source map points at a source that is in the package.
    const maps = files.filter((f) => f.endsWith('.js.map'));
    assert.ok(maps.length > 0);
    for (const map of maps)
      for (const source of JSON.parse(fs.readFileSync(path.join(ROOT, map), 'utf8')).sources) {
        const shipped = path.posix.normalize(path.posix.join(path.posix.dirname(map), source));
        assert.ok(files.includes(shipped), `${map} points at ${shipped}, which is in the package`);
      }

    const project = path.join(work, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'my-app', version: '1.0.0', private: true }));
    const env = {
      ...process.env,
      OV_DIFFUSION_OPENVINO_DIR: path.join(ROOT, 'runtime', 'site-packages'),
      // A compile would need these; pointing them at `false` makes any attempt fail loudly.
      CXX: 'false',
      CC: 'false',
      npm_config_build_from_source: '',
    };
    const install = run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'], {
      cwd: project,
      env,
    });
    assert.doesNotMatch(install.stdout + install.stderr, /building from source/, 'the prebuild was used');

    // The README's library example, verbatim.
    fs.writeFileSync(path.join(project, 'first.mjs'), example[1]);
    const first = run(process.execPath, ['first.mjs'], { cwd: project });
    assert.match(first.stdout, /wrote first\.png \(seed \d+\)/);
    assert.equal(await pngSize(fs.readFileSync(path.join(project, 'first.png'))), '128x128');

    // The bundled server, started the way the package exposes it, answering the README's request.
    const server = spawn(
      process.execPath,
      [path.join(project, 'node_modules', '.bin', 'ov-diffusion'), '--rest_port', '0', '--rest_bind_address', '127.0.0.1'],
      { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const url = await new Promise((resolve, reject) => {
        let log = '';
        const timer = setTimeout(() => reject(new Error(`no "listening" line in 120 s:\n${log}`)), 120_000);
        const onData = (chunk) => {
          log += chunk;
          const m = log.match(/listening on (http:\/\/[^\s]+)/);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        };
        server.stdout.on('data', onData);
        server.stderr.on('data', onData);
        server.once('exit', (code) => reject(new Error(`the server exited (${code}):\n${log}`)));
      });
      const res = await fetch(`${url}/v3/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: curlBody[1],
      });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      assert.equal(await pngSize(Buffer.from(body.data[0].b64_json, 'base64')), '128x128');
      // The playground page and its script, from the installed package.
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /ov-diffusion playground/);
      assert.equal((await fetch(`${url}/playground/main.js`)).status, 200);
    } finally {
      server.kill('SIGTERM');
      await new Promise((resolve) => (server.exitCode !== null ? resolve() : server.once('exit', resolve)));
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
