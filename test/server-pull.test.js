'use strict';
// Pulling from the Hugging Face hub, end to end through the CLI, against a local server in the hub's URL layout:
// download and exit (--pull), checksums, token, resuming an interrupted download, skipping what is present,
// --overwrite_models, LoRA files, conversion of non-OpenVINO sources, and pull-then-serve.
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { fixture } = require('./helpers/paths');
const { startHubServer, walk } = require('./helpers/hub-server');
const { runCli, startCli } = require('./helpers/server-http');
const { readGraph } = require('../dist/launcher/config');

const SD15 = fixture('sd15');
const REPO = 'OpenVINO/tiny-sd15-ov';
const BIG_FILE = 'unet/openvino_model.bin';

const sha = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const made = [];
const tmp = (name) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ovd-${name}-`));
  made.push(dir);
  return dir;
};
test.after(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true });
});

function assertSameTree(actual, expected) {
  assert.deepEqual(
    walk(actual).filter((f) => f !== 'graph.pbtxt'),
    walk(expected),
  );
  for (const rel of walk(expected)) assert.equal(sha(path.join(actual, rel)), sha(path.join(expected, rel)), rel);
}

/** A LoRA repository with one file, and one with two. */
function loraRepos() {
  const one = tmp('lora-one');
  fs.copyFileSync(fixture('loras/sd15-peft-a.safetensors'), path.join(one, 'pytorch_lora_weights.safetensors'));
  fs.writeFileSync(path.join(one, 'README.md'), '# a LoRA\n');
  const two = tmp('lora-two');
  fs.copyFileSync(fixture('loras/sd15-peft-a.safetensors'), path.join(two, 'Style A.safetensors'));
  fs.copyFileSync(fixture('loras/sd15-peft-b.safetensors'), path.join(two, 'style-b.safetensors'));
  return { 'org/lora-one': one, 'org/lora-two': two };
}

test('--pull downloads a model with verified checksums, writes graph.pbtxt, leaves no partial files and exits', async () => {
  const hub = await startHubServer({ [REPO]: SD15 }, { pageSize: 7 });
  const repo = tmp('repo');
  try {
    const r = await runCli(
      [
        '--pull',
        '--source_model',
        REPO,
        '--model_repository_path',
        repo,
        '--task',
        'image_generation',
        '--target_device',
        'CPU',
        '--max_num_inference_steps',
        '20',
      ],
      { env: { HF_ENDPOINT: hub.url, HF_TOKEN: '' } },
    );
    assert.equal(r.status, 0, r.stderr);
    const dir = path.join(repo, 'OpenVINO', 'tiny-sd15-ov');
    assertSameTree(dir, SD15);
    assert.deepEqual(fs.readdirSync(path.join(repo, 'OpenVINO')), ['tiny-sd15-ov'], 'the staging folder is gone');
    assert.ok(hub.log.filter((l) => l.path.includes('/tree/')).length > 1, 'the paginated listing was followed');
    const graph = readGraph(dir);
    assert.equal(graph.modelsPath, dir);
    assert.deepEqual(graph.flags, { target_device: 'CPU', max_num_inference_steps: '20' });
    assert.match(r.stderr, /downloaded to/);
    assert.doesNotMatch(r.stderr, /listening/, '--pull does not serve');

    // Present: skipped without downloading; --overwrite_models downloads again.
    const before = hub.downloads().length;
    const again = await runCli(['--pull', '--source_model', REPO, '--model_repository_path', repo], { env: { HF_ENDPOINT: hub.url } });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /already in/);
    assert.equal(hub.downloads().length, before);
    fs.writeFileSync(path.join(dir, 'stale.txt'), 'left over');
    const overwrite = await runCli(['--pull', '--source_model', REPO, '--model_repository_path', repo, '--overwrite_models'], {
      env: { HF_ENDPOINT: hub.url },
    });
    assert.equal(overwrite.status, 0, overwrite.stderr);
    assert.equal(hub.downloads().length, before * 2);
    assert.ok(!fs.existsSync(path.join(dir, 'stale.txt')));
    assertSameTree(dir, SD15);
  } finally {
    await hub.close();
  }
});

test('OVMS_MODEL_REPOSITORY_PATH is the default repository; HF_TOKEN is sent, and its absence is a clear error', async () => {
  const hub = await startHubServer({ [REPO]: SD15 }, { token: 'hf_secret' });
  const repo = tmp('repo-env');
  try {
    const denied = await runCli(['--pull', '--source_model', REPO], {
      env: { HF_ENDPOINT: hub.url, HF_TOKEN: '', OVMS_MODEL_REPOSITORY_PATH: repo },
    });
    assert.notEqual(denied.status, 0);
    assert.match(denied.stderr, /HF_TOKEN/);
    assert.ok(!fs.existsSync(path.join(repo, 'OpenVINO', 'tiny-sd15-ov')));
    const ok = await runCli(['--pull', '--source_model', REPO], {
      env: { HF_ENDPOINT: `${hub.url}/`, HF_TOKEN: 'hf_secret', OVMS_MODEL_REPOSITORY_PATH: repo },
    });
    assert.equal(ok.status, 0, ok.stderr);
    assert.ok(hub.downloads().every((d) => d.auth === 'Bearer hf_secret'));
    assertSameTree(path.join(repo, 'OpenVINO', 'tiny-sd15-ov'), SD15);
  } finally {
    await hub.close();
  }
});

test('a download cut off mid-file resumes with an HTTP Range request and still verifies', async () => {
  const size = fs.statSync(path.join(SD15, BIG_FILE)).size;
  const hub = await startHubServer({ [REPO]: SD15 }, { interrupt: { file: BIG_FILE, afterBytes: 100000, times: 1 } });
  const repo = tmp('repo-resume');
  try {
    const r = await runCli(['--pull', '--source_model', REPO, '--model_repository_path', repo], { env: { HF_ENDPOINT: hub.url } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /interrupted/);
    const requests = hub.downloads().filter((d) => d.path.endsWith(BIG_FILE));
    assert.equal(requests.length, 2);
    assert.equal(requests[0].range, undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(requests[1].range)[1]);
    assert.ok(resumedAt >= 100000 && resumedAt < size, `resumed at ${resumedAt}`);
    assertSameTree(path.join(repo, 'OpenVINO', 'tiny-sd15-ov'), SD15);
  } finally {
    await hub.close();
  }
});

test('a pull stopped earlier resumes from its staging folder; a corrupt download is caught by the checksum', async () => {
  const repo = tmp('repo-restart');
  const target = path.join(repo, 'OpenVINO', 'tiny-sd15-ov');
  const staging = path.join(repo, 'OpenVINO', '.tiny-sd15-ov.partial');
  // What an interrupted run leaves: one finished file, one half-written .part.
  fs.mkdirSync(path.join(staging, 'unet'), { recursive: true });
  fs.copyFileSync(path.join(SD15, 'model_index.json'), path.join(staging, 'model_index.json'));
  const big = fs.readFileSync(path.join(SD15, BIG_FILE));
  fs.writeFileSync(path.join(staging, `${BIG_FILE}.part`), big.subarray(0, 5000));

  const corrupt = await startHubServer({ [REPO]: SD15 }, { corrupt: { file: 'text_encoder/openvino_model.bin' } });
  try {
    const r = await runCli(['--pull', '--source_model', REPO, '--model_repository_path', repo], { env: { HF_ENDPOINT: corrupt.url } });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /checksum mismatch/);
    assert.ok(!fs.existsSync(target), 'nothing half-downloaded is put in place');
  } finally {
    await corrupt.close();
  }
  const hub = await startHubServer({ [REPO]: SD15 });
  try {
    const r = await runCli(['--pull', '--source_model', REPO, '--model_repository_path', repo], { env: { HF_ENDPOINT: hub.url } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /resuming/);
    const paths = hub.downloads().map((d) => d.path);
    assert.ok(!paths.some((p) => p.endsWith('/model_index.json')), 'finished files are not downloaded again');
    assert.equal(hub.downloads().find((d) => d.path.endsWith(BIG_FILE)).range, 'bytes=5000-');
    assertSameTree(target, SD15);
    assert.ok(!fs.existsSync(staging));
  } finally {
    await hub.close();
  }
});

test('LoRA files are pulled under loras/ (HF repo with @file, HF repo with one file, URL) and listed in graph.pbtxt', async () => {
  const hub = await startHubServer({ [REPO]: SD15, ...loraRepos() });
  const repo = tmp('repo-lora');
  try {
    const loras = `a=org/lora-two@Style%20A.safetensors:0.7,one=org/lora-one,url=${hub.url}/org/lora-two/resolve/main/style-b.safetensors,blend=@a:0.5+@one`;
    const r = await runCli(['--pull', '--source_model', REPO, '--model_repository_path', repo, '--source_loras', loras], {
      env: { HF_ENDPOINT: hub.url },
    });
    assert.equal(r.status, 0, r.stderr);
    const dir = path.join(repo, 'OpenVINO', 'tiny-sd15-ov');
    const a = path.join(dir, 'loras', 'org', 'lora-two', 'Style A.safetensors');
    const one = path.join(dir, 'loras', 'org', 'lora-one', 'pytorch_lora_weights.safetensors');
    const url = path.join(dir, 'loras', 'url', 'style-b.safetensors');
    assert.equal(sha(a), sha(fixture('loras/sd15-peft-a.safetensors')));
    assert.equal(sha(one), sha(fixture('loras/sd15-peft-a.safetensors')));
    assert.equal(sha(url), sha(fixture('loras/sd15-peft-b.safetensors')));
    const graph = readGraph(dir);
    assert.deepEqual(
      graph.loras.map((l) => l.alias),
      ['a', 'one', 'url', 'blend'],
    );
    assert.equal(graph.loras[0].source.path, a);
    assert.equal(graph.loras[0].alpha, 0.7);
    assert.deepEqual(graph.loras[3].components, [
      { alias: 'a', alpha: 0.5 },
      { alias: 'one', alpha: undefined },
    ]);

    const ambiguous = await runCli(
      ['--pull', '--source_model', REPO, '--model_repository_path', repo, '--source_loras', 'two=org/lora-two'],
      { env: { HF_ENDPOINT: hub.url } },
    );
    assert.notEqual(ambiguous.status, 0);
    assert.match(ambiguous.stderr, /Multiple \.safetensors files found in org\/lora-two/);
  } finally {
    await hub.close();
  }
});

test('a source not in OpenVINO format: a clear error without optimum-cli, a conversion with it', async () => {
  const source = tmp('pytorch-model');
  fs.copyFileSync(path.join(SD15, 'model_index.json'), path.join(source, 'model_index.json'));
  fs.mkdirSync(path.join(source, 'unet'));
  fs.writeFileSync(path.join(source, 'unet', 'diffusion_pytorch_model.safetensors'), 'weights');
  const hub = await startHubServer({ 'stable-diffusion-v1-5/tiny': source });
  const repo = tmp('repo-convert');
  const bin = tmp('bin');
  try {
    const noTool = await runCli(['--pull', '--source_model', 'stable-diffusion-v1-5/tiny', '--model_repository_path', repo], {
      env: { HF_ENDPOINT: hub.url, PATH: path.dirname(process.execPath) },
    });
    assert.notEqual(noTool.status, 0);
    assert.match(noTool.stderr, /not in OpenVINO format and optimum-cli is not installed/);
    assert.match(noTool.stderr, /pip install/);

    // A stand-in optimum-cli: records its arguments and "exports" the sd15 fixture into the output folder.
    const record = path.join(bin, 'args.json');
    fs.writeFileSync(
      path.join(bin, 'optimum-cli'),
      `#!${process.execPath}\n` +
        `const fs = require('fs'); const args = process.argv.slice(2); fs.writeFileSync(${JSON.stringify(record)}, JSON.stringify(args));\n` +
        `fs.cpSync(${JSON.stringify(SD15)}, args[args.length - 1], { recursive: true });\n`,
      { mode: 0o755 },
    );
    const converted = await runCli(
      [
        '--pull',
        '--source_model',
        'stable-diffusion-v1-5/tiny',
        '--model_repository_path',
        repo,
        '--weight-format',
        'int4',
        '--extra_quantization_params',
        '--group-size 64',
      ],
      { env: { HF_ENDPOINT: hub.url, PATH: `${bin}${path.delimiter}${path.dirname(process.execPath)}` } },
    );
    assert.equal(converted.status, 0, converted.stderr);
    const args = JSON.parse(fs.readFileSync(record, 'utf8'));
    assert.deepEqual(args.slice(0, -1), [
      'export',
      'openvino',
      '--model',
      'stable-diffusion-v1-5/tiny',
      '--weight-format',
      'int4',
      '--group-size',
      '64',
    ]);
    assertSameTree(path.join(repo, 'stable-diffusion-v1-5', 'tiny'), SD15);
  } finally {
    await hub.close();
  }
});

test('--source_model without --pull downloads, then serves the model under its repository name', async () => {
  const hub = await startHubServer({ [REPO]: SD15, ...loraRepos() });
  const repo = tmp('repo-serve');
  let server;
  try {
    server = await startCli(
      ['--model_repository_path', repo, '--task', 'image_generation', '--source_model', REPO, '--source_loras', 'style=org/lora-one'],
      { env: { HF_ENDPOINT: hub.url } },
    );
    const models = await (await fetch(`${server.url}/v3/models`)).json();
    assert.deepEqual(
      models.data.map((m) => m.id),
      [REPO, 'style'],
    );
    const res = await fetch(`${server.url}/v3/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: REPO, prompt: 'three astronauts', rng_seed: 409, num_inference_steps: 2, size: '64x64' }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(Buffer.from(body.data[0].b64_json, 'base64').subarray(1, 4).toString(), 'PNG');
    const lora = await fetch(`${server.url}/v3/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'style', prompt: 'x', num_inference_steps: 1 }),
    });
    assert.equal(lora.status, 200, 'the pulled LoRA file was loaded and the alias is served');
    assert.match(server.output(), /LoRA names: style/);
  } finally {
    await server?.stop();
    await hub.close();
  }
});
