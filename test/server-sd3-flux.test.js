'use strict';
// SD3 and FLUX through the server's endpoints with the real engine: their extra request fields reach
// the library, and what a family does not take is a 400 naming the field.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { fixture } = require('./helpers/paths');
const { startCli } = require('./helpers/server-http');

let server;
test.before(async () => {
  const config = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-sd3-flux-')), 'config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      model_config_list: [
        { config: { name: 'sd3', base_path: fixture('sd3') } },
        { config: { name: 'flux', base_path: fixture('flux-schnell') } },
      ],
    }),
  );
  server = await startCli(['--config_path', config]);
});
test.after(async () => {
  await server?.stop();
});

async function generate(body) {
  const res = await fetch(`${server.url}/v3/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ num_inference_steps: 2, ...body }),
  });
  return { status: res.status, json: await res.json() };
}

const pixels = (json) => Buffer.from(json.data[0].b64_json, 'base64');

test('SD3 takes prompt_2, prompt_3, negative prompts and max_sequence_length', async () => {
  const base = { model: 'sd3', prompt: 'a lighthouse', size: '64x64', rng_seed: 3 };
  const plain = await generate(base);
  assert.equal(plain.status, 200, JSON.stringify(plain.json));
  const full = await generate({
    ...base,
    prompt_2: 'oil painting',
    prompt_3: 'a lighthouse in a storm',
    negative_prompt: 'text',
    negative_prompt_2: 'blur',
    negative_prompt_3: 'watermark',
    max_sequence_length: 64,
  });
  assert.equal(full.status, 200, JSON.stringify(full.json));
  assert.notDeepEqual(pixels(full.json), pixels(plain.json), 'the extra prompts change the image');
  const tooLong = await generate({ ...base, max_sequence_length: 513 });
  assert.equal(tooLong.status, 400);
  assert.match(tooLong.json.error.message, /max_sequence_length/);
});

test('FLUX takes prompt_2 and max_sequence_length, and refuses negative prompts with a 400', async () => {
  const ok = await generate({ model: 'flux', prompt: 'a red fox', prompt_2: 'a red fox in snow', size: '64x64', max_sequence_length: 32 });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  const negative = await generate({ model: 'flux', prompt: 'a red fox', size: '64x64', negative_prompt: 'blurry' });
  assert.equal(negative.status, 400, JSON.stringify(negative.json).slice(0, 300));
  assert.equal(negative.json.error.type, 'invalid_request_error');
  assert.match(negative.json.error.message, /negative/i);
  // FLUX packs 2x2 latents: sizes are multiples of 2 x the VAE scale (4 for this fixture, 16 for real FLUX).
  const badSize = await generate({ model: 'flux', prompt: 'x', size: '66x66' });
  assert.equal(badSize.status, 400, JSON.stringify(badSize.json).slice(0, 300));
  assert.match(badSize.json.error.message, /4/);
});
