'use strict';
// The official `openai` npm client against the real server process and the real engine: a --config_path server with
// two models (a base SD 1.5 and a dedicated inpainting model) behind an API key, and the embedded demo of `npm start`.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { OpenAI, toFile, AuthenticationError, BadRequestError, NotFoundError } = require('openai');
const { fixture } = require('./helpers/paths');
const { makeImage, pngWithoutText } = require('./helpers/server-fakes');
const { startCli } = require('./helpers/server-http');
const { runOracle, compareBytes, printTable } = require('./helpers/oracle');
const sharp = require('sharp');

const KEY = 'test-key-123';

function pngInfo(b64) {
  const bytes = Buffer.from(b64, 'base64');
  assert.equal(bytes.subarray(0, 8).toString('hex'), '89504e470d0a1a0a');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20), bytes };
}

let server;
let client;
let dir;

test.before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-openai-'));
  fs.writeFileSync(path.join(dir, 'key.txt'), `${KEY}\nsecond line is ignored\n`);
  fs.writeFileSync(
    path.join(dir, 'config.json'),
    JSON.stringify({
      model_config_list: [
        {
          config: {
            name: 'OpenVINO/stable-diffusion-v1-5-int8-ov',
            base_path: fixture('sd15'),
            max_num_inference_steps: 10,
            source_loras: `ink=${fixture('loras/sd15-kohya-a.safetensors')}:0.8,wash=${fixture('loras/sd15-kohya-b.safetensors')},blend=@ink:0.5+@wash:0.5`,
          },
        },
        { config: { name: 'stable-diffusion-v1-5/stable-diffusion-inpainting', base_path: fixture('sd-inpaint'), max_concurrency: 1 } },
      ],
    }),
  );
  server = await startCli(['--config_path', path.join(dir, 'config.json'), '--api_key_file', path.join(dir, 'key.txt')]);
  client = new OpenAI({ baseURL: `${server.url}/v3`, apiKey: KEY, maxRetries: 0 });
});

test.after(async () => {
  await server?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('without the API key the client gets AuthenticationError; with it, both models are listed', async () => {
  const anonymous = new OpenAI({ baseURL: `${server.url}/v3`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(
    anonymous.models.list(),
    (e) => e instanceof AuthenticationError && e.status === 401 && e.code === 'invalid_api_key',
  );
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.deepEqual(ids, [
    'OpenVINO/stable-diffusion-v1-5-int8-ov',
    'ink',
    'wash',
    'blend',
    'stable-diffusion-v1-5/stable-diffusion-inpainting',
  ]);
  const one = await client.models.retrieve('OpenVINO/stable-diffusion-v1-5-int8-ov');
  assert.equal(one.id, 'OpenVINO/stable-diffusion-v1-5-int8-ov');
});

test('images.generate: the seed example (extra fields rng_seed, size, steps), deterministic per seed, n images', async () => {
  const request = {
    model: 'OpenVINO/stable-diffusion-v1-5-int8-ov',
    prompt: 'Three astronauts on the moon',
    rng_seed: 409,
    size: '64x64',
    num_inference_steps: 3,
  };
  const first = await client.images.generate(request);
  assert.ok(Math.abs(first.created - Date.now() / 1000) < 60);
  assert.equal(first.data.length, 1);
  const a = pngInfo(first.data[0].b64_json);
  assert.deepEqual([a.width, a.height], [64, 64]);
  const again = await client.images.generate(request);
  assert.ok(pngInfo(again.data[0].b64_json).bytes.equals(a.bytes), 'same seed, same image');
  const other = await client.images.generate({ ...request, rng_seed: 410 });
  assert.ok(!pngInfo(other.data[0].b64_json).bytes.equals(a.bytes), 'another seed, another image');

  const several = await client.images.generate({ ...request, n: 3, size: '64x48' });
  assert.equal(several.data.length, 3);
  for (const image of several.data) assert.deepEqual(Object.values(pngInfo(image.b64_json)).slice(0, 2), [64, 48]);
});

test('images.edit without a mask is image-to-image; with a mask, inpainting (base and dedicated inpainting models)', async () => {
  const picture = await makeImage(64, 64, 'png', { r: 20, g: 120, b: 200 });
  const mask = await makeImage(64, 64, 'png', { r: 255, g: 255, b: 255 });
  const i2i = await client.images.edit({
    model: 'OpenVINO/stable-diffusion-v1-5-int8-ov',
    prompt: 'in the jungle',
    image: await toFile(picture, 'generate_output.png', { type: 'image/png' }),
    rng_seed: 409,
    num_inference_steps: 4,
    strength: 0.67,
  });
  assert.deepEqual(Object.values(pngInfo(i2i.data[0].b64_json)).slice(0, 2), [64, 64]);

  const inpaint = await client.images.edit({
    model: 'OpenVINO/stable-diffusion-v1-5-int8-ov',
    prompt: 'a dog on a bench',
    image: await toFile(picture, 'cat.png'),
    mask: await toFile(mask, 'cat_mask.png'),
    num_inference_steps: 3,
    size: '64x64',
  });
  assert.equal(inpaint.data.length, 1);
  pngInfo(inpaint.data[0].b64_json);

  // fs streams: the SDK sends them chunked, as application/octet-stream, possibly before the text fields.
  const files = path.join(dir, 'files');
  fs.mkdirSync(files);
  fs.writeFileSync(path.join(files, 'cat.png'), picture);
  fs.writeFileSync(path.join(files, 'cat_mask.png'), mask);
  const dedicated = await client.images.edit({
    image: fs.createReadStream(path.join(files, 'cat.png')),
    mask: fs.createReadStream(path.join(files, 'cat_mask.png')),
    model: 'stable-diffusion-v1-5/stable-diffusion-inpainting',
    prompt: 'a golden retriever',
    num_inference_steps: 3,
    n: 2,
  });
  assert.equal(dedicated.data.length, 2);
});

test('LoRA: the model name selects adapters and composites, lora_alphas overrides their alphas', async () => {
  const ask = async (model, extra = {}) => {
    const result = await client.images.generate({ model, prompt: 'a cat in sunglasses', rng_seed: 7, num_inference_steps: 2, ...extra });
    // The pixels: the PNG's parameters text names the model and the adapters.
    return pngWithoutText(pngInfo(result.data[0].b64_json).bytes);
  };
  const base = await ask('OpenVINO/stable-diffusion-v1-5-int8-ov');
  const ink = await ask('ink');
  const blend = await ask('blend');
  assert.ok(!ink.equals(base), 'the adapter changes the image');
  assert.ok(!blend.equals(base) && !blend.equals(ink), 'the composite is another image');
  assert.ok((await ask('ink', { lora_alphas: { ink: 0 } })).equals(base), 'alpha 0 is the base model');
  assert.ok((await ask('blend', { lora_alphas: { ink: 0, wash: 0 } })).equals(base));
  await assert.rejects(ask('ink', { lora_alphas: { wash: 0.5 } }), (e) => e instanceof BadRequestError && e.param === 'lora_alphas');
});

test("LoRA routes give openvino_genai's pixels on every request: each alias twice in a row, then the first again", async () => {
  const [a, b] = ['a', 'b'].map((x) => fixture(`loras/sd15-kohya-${x}.safetensors`));
  const routes = {
    ink: [{ path: a, alpha: 0.8 }],
    wash: [{ path: b, alpha: 1 }],
    blend: [
      { path: a, alpha: 0.5 },
      { path: b, alpha: 0.5 },
    ],
  };
  const prompt = 'a cat in sunglasses';
  const oracle = await runOracle(
    Object.values(routes).map((adapters) => ({
      pipeline: 'text2image',
      model: fixture('sd15'),
      prompt,
      rng_seed: 7,
      num_inference_steps: 2,
      adapters,
      adapters_pool: [{ path: a }, { path: b }],
      fresh: true,
    })),
  );
  const expected = Object.fromEntries(Object.keys(routes).map((alias, i) => [alias, oracle[i].data]));
  const rgb = async (alias) => {
    const result = await client.images.generate({ model: alias, prompt, rng_seed: 7, num_inference_steps: 2 });
    return sharp(Buffer.from(result.data[0].b64_json, 'base64')).removeAlpha().raw().toBuffer();
  };
  const rows = [];
  for (const alias of ['ink', 'ink', 'wash', 'wash', 'blend', 'blend', 'ink'])
    rows.push({ name: alias, ...compareBytes(await rgb(alias), expected[alias]) });
  printTable('LoRA routes over HTTP (ours vs openvino_genai), in request order', rows);
  assert.deepEqual(
    rows.filter((r) => r.maxDiff > 1),
    [],
  );
});

test('errors reach the client as its exception classes with the field named', async () => {
  await assert.rejects(
    client.images.generate({ model: 'no-such-model', prompt: 'x' }),
    (e) => e instanceof NotFoundError && e.status === 404 && e.param === 'model' && e.code === 'model_not_found',
  );
  await assert.rejects(
    client.images.generate({ model: 'OpenVINO/stable-diffusion-v1-5-int8-ov', prompt: 'x', size: '64x-64' }),
    (e) => e instanceof BadRequestError && e.param === 'size',
  );
  await assert.rejects(
    client.images.generate({ model: 'OpenVINO/stable-diffusion-v1-5-int8-ov', prompt: 'x', num_inference_steps: 11 }),
    (e) => e instanceof BadRequestError && e.param === 'num_inference_steps' && /at most 10/.test(e.message),
  );
  await assert.rejects(
    client.images.generate({ model: 'OpenVINO/stable-diffusion-v1-5-int8-ov', prompt: 'x', prompt_2: 'y', num_inference_steps: 1 }),
    (e) => e instanceof BadRequestError && e.param === 'prompt_2',
    'the library refuses prompt_2 on SD 1.5 and the server names the field',
  );
  await assert.rejects(
    client.images.generate({ model: 'stable-diffusion-v1-5/stable-diffusion-inpainting', prompt: 'x' }),
    (e) => e instanceof BadRequestError && e.param === 'model' && /inpainting/.test(e.message),
  );
  await assert.rejects(
    client.images.edit({
      model: 'stable-diffusion-v1-5/stable-diffusion-inpainting',
      prompt: 'x',
      image: await toFile(await makeImage(), 'a.png'),
    }),
    (e) => e instanceof BadRequestError && e.param === 'mask',
  );
  await assert.rejects(
    client.images.edit({
      model: 'OpenVINO/stable-diffusion-v1-5-int8-ov',
      prompt: 'x',
      image: await toFile(Buffer.from('not an image'), 'a.png'),
    }),
    (e) => e instanceof BadRequestError && e.param === 'image',
  );
});

test('concurrent requests to the two models both succeed (parallelism itself is timed in server-routes.test.js)', async () => {
  const white = { r: 255, g: 255, b: 255 };
  const [a, b] = await Promise.all([
    client.images.generate({ model: 'OpenVINO/stable-diffusion-v1-5-int8-ov', prompt: 'a', num_inference_steps: 10, size: '128x128' }),
    client.images.edit({
      model: 'stable-diffusion-v1-5/stable-diffusion-inpainting',
      prompt: 'b',
      num_inference_steps: 10,
      image: await toFile(await makeImage(128, 128), 'a.png'),
      mask: await toFile(await makeImage(128, 128, 'png', white), 'm.png'),
    }),
  ]);
  assert.deepEqual(Object.values(pngInfo(a.data[0].b64_json)).slice(0, 2), [128, 128]);
  assert.equal(b.data.length, 1);
  pngInfo(b.data[0].b64_json);
});

test('one --resolution compiles static shapes: requests get that size and count by default, other sizes are refused', async () => {
  const fixed = await startCli([
    '--model_name',
    'sd',
    '--model_path',
    fixture('sd15'),
    '--resolution',
    '64x48',
    '--num_images_per_prompt',
    '2',
  ]);
  try {
    const open = new OpenAI({ baseURL: `${fixed.url}/v3`, apiKey: 'unused', maxRetries: 0 });
    const result = await open.images.generate({ model: 'sd', prompt: 'x', num_inference_steps: 2 });
    assert.equal(result.data.length, 2);
    for (const image of result.data) assert.deepEqual(Object.values(pngInfo(image.b64_json)).slice(0, 2), [64, 48]);
    await assert.rejects(
      open.images.generate({ model: 'sd', prompt: 'x', size: '64x64' }),
      (e) => e instanceof BadRequestError && e.param === 'size',
    );
    await assert.rejects(open.images.generate({ model: 'sd', prompt: 'x', n: 1 }), (e) => e instanceof BadRequestError && e.param === 'n');
  } finally {
    await fixed.stop();
  }
});

test('npm start: with no model flags the embedded demo models are served, with a log line saying what they draw', async () => {
  const demo = await startCli([]);
  try {
    assert.match(demo.output(), /serving the embedded demo models 'demo' and 'demo-inpaint'/);
    assert.match(demo.output(), /trained on coloured shapes: it draws one or two small\/big circle, square, triangle, star, heart, ring/);
    assert.match(demo.output(), /LoRA 'outlined'/);
    assert.match(demo.output(), /at guidance_scale 2 by default/);
    assert.match(demo.output(), /--source_model OpenVINO\/stable-diffusion-v1-5-int8-ov/);
    const open = new OpenAI({ baseURL: `${demo.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const models = (await open.models.list()).data.map((m) => m.id);
    for (const id of ['demo', 'demo-inpaint', 'outlined']) assert.ok(models.includes(id), `${id} is listed: ${models}`);
    // a request picks the LoRA by its alias as the model (the OVMS convention)
    const result = await open.images.generate({
      model: 'outlined',
      prompt: 'outlined, a big red circle in the centre',
      rng_seed: 409,
      num_inference_steps: 2,
    });
    // the demo model's native size: 16x16 latents, VAE scale 8
    assert.deepEqual(Object.values(pngInfo(result.data[0].b64_json)).slice(0, 2), [128, 128]);
  } finally {
    await demo.stop();
  }
});
