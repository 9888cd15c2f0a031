'use strict';
// The HTTP routes against fake models: every request field, its defaults and limits, the errors (OpenAI shape,
// statuses, the field named), multipart details the official clients produce, model routing, health and auth.
// The OVMS test-list cases (reference section 8) that apply are marked "OVMS:".
const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('http');
const { buildModelSettings } = require('../dist/server/settings');
const { loraLoadOptions, parseSourceLoras } = require('../dist/launcher/lora-sources');
const { fakeModel, makeImage } = require('./helpers/server-fakes');
const { withApp } = require('./helpers/server-http');

const PNG_MAGIC = '89504e470d0a1a0a';

const one = (model = fakeModel(), flags = {}) => [{ name: 'sd', model, settings: buildModelSettings(flags) }];

async function postJson(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

async function postForm(url, form, headers = {}) {
  const res = await fetch(url, { method: 'POST', body: form, headers });
  return { status: res.status, headers: res.headers, json: await res.json() };
}

function assertError(res, status, param) {
  assert.equal(res.status, status, JSON.stringify(res.json));
  assert.equal(res.headers.get('content-type').split(';')[0], 'application/json');
  const { error } = res.json;
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(typeof error.message, 'string');
  assert.ok(error.message.length > 5);
  assert.equal(error.type, status >= 500 ? 'server_error' : 'invalid_request_error');
  if (param !== undefined) assert.equal(error.param, param, error.message);
}

function decodePng(b64) {
  const bytes = Buffer.from(b64, 'base64');
  assert.equal(bytes.subarray(0, 8).toString('hex'), PNG_MAGIC);
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

test('generations: a JSON request maps onto text2image and answers created + b64_json PNGs', async () => {
  const model = fakeModel();
  await withApp(one(model), async (url) => {
    const before = Math.floor(Date.now() / 1000);
    const res = await postJson(`${url}/v3/images/generations`, {
      model: 'sd',
      prompt: 'three astronauts',
      prompt_2: 'p2',
      prompt_3: 'p3',
      negative_prompt: 'n1',
      negative_prompt_2: 'n2',
      negative_prompt_3: 'n3',
      size: '96x32',
      n: 2,
      num_inference_steps: 7,
      guidance_scale: 6.5,
      rng_seed: 409,
      max_sequence_length: 77,
      response_format: 'b64_json',
    });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.json.created >= before && res.json.created <= before + 5);
    assert.equal(res.json.data.length, 2);
    for (const item of res.json.data) assert.deepEqual(decodePng(item.b64_json), { width: 96, height: 32 });
    assert.equal(res.json.size, '96x32');
    assert.equal(res.json.output_format, 'png');
    const call = model.calls[0];
    assert.equal(call.task, 'text2image');
    assert.equal(call.prompt, 'three astronauts');
    const { signal, onStep, admit, onRunning, ...options } = call.options;
    assert.ok(signal instanceof AbortSignal);
    assert.equal(typeof onStep, 'function');
    assert.equal(typeof admit, 'function');
    assert.deepEqual(options, {
      prompt2: 'p2',
      prompt3: 'p3',
      negativePrompt: 'n1',
      negativePrompt2: 'n2',
      negativePrompt3: 'n3',
      width: 96,
      height: 32,
      numImagesPerPrompt: 2,
      numInferenceSteps: 7,
      guidanceScale: 6.5,
      seed: 409,
      maxSequenceLength: 77,
    });
    assert.equal(res.headers.get('x-rng-seed'), '409');
  });
});

test('generations: null means default, unknown and ignored OpenAI fields are tolerated, steps default to 50 (OVMS)', async () => {
  const model = fakeModel();
  await withApp(one(model), async (url) => {
    const res = await postJson(`${url}/v1/images/generations`, {
      model: 'sd',
      prompt: 'x',
      n: null,
      size: null,
      response_format: null,
      guidance_scale: null,
      style: 'vivid',
      user: 'u1',
      moderation: 'low',
      foo: { nested: [1] },
      num_images_per_prompt: null,
    });
    assert.equal(res.status, 200, res.text);
    const { signal, onStep, admit, onRunning, seed, ...options } = model.calls[0].options;
    assert.deepEqual(options, { numInferenceSteps: 50 });
    assert.ok(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32, 'without rng_seed, a random seed');
    assert.equal(res.headers.get('x-rng-seed'), String(seed));
  });
});

test('generations: OVMS getImageGenerationRequestOptionsAllHandledOpenAIFields (size 512x1024, n 4) and size auto', async () => {
  const model = fakeModel({ width: 8, height: 8 });
  await withApp(one(model), async (url) => {
    assert.equal(
      (await postJson(`${url}/v3/images/generations`, { model: 'sd', prompt: 'x', size: '512x1024', n: 4, num_inference_steps: 1 })).status,
      200,
    );
    assert.equal((await postJson(`${url}/v3/images/generations`, { model: 'sd', prompt: 'x', size: 'auto' })).status, 200);
    assert.deepEqual(
      Object.keys(model.calls[0].options)
        .filter((k) => !['signal', 'onStep', 'admit', 'onRunning', 'seed'].includes(k))
        .sort(),
      ['height', 'numImagesPerPrompt', 'numInferenceSteps', 'width'],
    );
    assert.equal(model.calls[0].options.width, 512);
    assert.equal(model.calls[0].options.height, 1024);
    assert.equal(model.calls[1].options.width, undefined);
  });
});

test('generations: default_resolution fills in a missing size; guidance_scale may be an integer literal', async () => {
  const model = fakeModel();
  await withApp(one(model, { default_resolution: '512x256', default_num_inference_steps: '4' }), async (url) => {
    assert.equal((await postJson(`${url}/v3/images/generations`, { model: 'sd', prompt: 'x', guidance_scale: 7 })).status, 200);
    const { options } = model.calls[0];
    assert.equal(options.width, 512);
    assert.equal(options.height, 256);
    assert.equal(options.guidanceScale, 7);
    assert.equal(options.numInferenceSteps, 4);
  });
});

test('generations: every bad field is a 400 naming it (OVMS negative cases and more)', async () => {
  const model = fakeModel();
  const cases = [
    [{ prompt: undefined }, 'prompt'],
    ...[5, true, 1.5, ['a'], { a: 1 }].map((prompt) => [{ prompt }, 'prompt']),
    ...[
      '51:512',
      '512_51x',
      '51x512x',
      '-51x52',
      '51x-52',
      '0x52',
      '51x0',
      'abcx512',
      '5151xabc',
      '9223372036854775808x1',
      '0512x512',
      512,
    ].map((size) => [{ size }, 'size']),
    [{ size: '64x64', width: 64 }, 'width'],
    [{ size: '64x64', height: 64 }, 'height'],
    [{ n: 2, num_images_per_prompt: 2 }, 'num_images_per_prompt'],
    [{ n: 0 }, 'n'],
    [{ num_images_per_prompt: 0 }, 'num_images_per_prompt'],
    [{ n: 11 }, 'n'],
    [{ n: 1.5 }, 'n'],
    [{ n: '2' }, 'n'],
    [{ num_inference_steps: 0 }, 'num_inference_steps'],
    [{ num_inference_steps: 101 }, 'num_inference_steps'],
    [{ num_inference_steps: -1 }, 'num_inference_steps'],
    [{ width: 0 }, 'width'],
    [{ height: 0 }, 'height'],
    [{ width: 'wide' }, 'width'],
    [{ strength: 1.5 }, 'strength'],
    [{ strength: -0.5 }, 'strength'],
    [{ guidance_scale: '7' }, 'guidance_scale'],
    [{ rng_seed: -1 }, 'rng_seed'],
    [{ rng_seed: 2 ** 60 }, 'rng_seed'],
    [{ max_sequence_length: 0 }, 'max_sequence_length'],
    [{ response_format: 'unsupported' }, 'response_format'],
    [{ stream: true, response_format: 'url' }, 'response_format'],
    [{ stream: 'true' }, 'stream'],
    [{ partial_images: 5 }, 'partial_images'],
    [{ partial_images: -1 }, 'partial_images'],
    [{ stream: true, partial_images: 1, preview_mode: 'cheap' }, 'preview_mode'],
    [{ scheduler: 'euler' }, 'scheduler'],
    [{ scheduler: 7 }, 'scheduler'],
    [{ background: 'transparent' }, 'background'],
    [{ output_format: 'gif' }, 'output_format'],
    [{ output_compression: 101 }, 'output_compression'],
    [{ lora_alphas: 'x' }, 'lora_alphas'],
    [{ lora_alphas: { a: 'high' } }, 'lora_alphas'],
    [{ size: '4104x64' }, 'size'],
    [{ width: 64, height: 5000 }, 'height'],
  ];
  await withApp(one(model), async (url) => {
    for (const [fields, param] of cases) {
      const res = await postJson(`${url}/v3/images/generations`, { model: 'sd', prompt: 'x', ...fields });
      assertError(res, 400, param);
    }
  });
  assert.equal(model.calls.length, 0, 'no invalid request reached the model');
});

test('generations: malformed JSON and non-object bodies are 400 (OVMS answers 412), curl -d without a content type works', async () => {
  await withApp(one(), async (url) => {
    assertError(await postJson(`${url}/v3/images/generations`, '{"model": "sd", "prompt": '), 400);
    assertError(await postJson(`${url}/v3/images/generations`, '[1, 2]'), 400);
    const res = await fetch(`${url}/v3/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '{"model":"sd","prompt":"x","num_inference_steps":1}',
    });
    assert.equal(res.status, 200);
  });
});

test('generations: unknown model is 404 model_not_found; model may be left out when one model is served', async () => {
  await withApp(one(), async (url) => {
    const res = await postJson(`${url}/v3/images/generations`, { model: 'nope', prompt: 'x' });
    assertError(res, 404, 'model');
    assert.equal(res.json.error.code, 'model_not_found');
    assert.equal((await postJson(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 1 })).status, 200);
  });
  await withApp(
    [
      { name: 'a', model: fakeModel() },
      { name: 'b', model: fakeModel() },
    ],
    async (url) => {
      assertError(await postJson(`${url}/v3/images/generations`, { prompt: 'x' }), 400, 'model');
    },
  );
});

test('generations: jpeg and webp output with output_compression', async () => {
  await withApp(one(), async (url) => {
    const jpeg = await postJson(`${url}/v3/images/generations`, { prompt: 'x', output_format: 'jpeg', output_compression: 50 });
    assert.equal(jpeg.status, 200);
    assert.equal(Buffer.from(jpeg.json.data[0].b64_json, 'base64').subarray(0, 3).toString('hex'), 'ffd8ff');
    assert.equal(jpeg.json.output_format, 'jpeg');
    const webp = await postJson(`${url}/v3/images/generations`, { prompt: 'x', output_format: 'webp' });
    assert.equal(Buffer.from(webp.json.data[0].b64_json, 'base64').subarray(8, 12).toString(), 'WEBP');
  });
});

test('generations: a static --resolution list restricts sizes; one resolution also fixes n and guidance (OVMS validateForStaticReshapeSettings)', async () => {
  const model = fakeModel();
  await withApp(one(model, { resolution: '512x256 1024x512 2048x1024' }), async (url) => {
    assert.equal((await postJson(`${url}/v3/images/generations`, { prompt: 'x', size: '1024x512' })).status, 200);
    assertError(await postJson(`${url}/v3/images/generations`, { prompt: 'x', size: '5x5' }), 400, 'size');
    assertError(await postJson(`${url}/v3/images/generations`, { prompt: 'x', width: 512 }), 400, 'height');
    assert.equal(
      (await postJson(`${url}/v3/images/generations`, { prompt: 'x', n: 3, guidance_scale: 3 })).status,
      200,
      'n and guidance are free with several sizes',
    );
    assert.equal((await postJson(`${url}/v3/images/generations`, { prompt: 'x' })).status, 200);
    assert.equal(model.calls.at(-1).options.width, 512, 'the first listed size is the default');
  });
  await withApp(one(fakeModel(), { resolution: '512x512', num_images_per_prompt: '4', guidance_scale: '7.1' }), async (url) => {
    assertError(await postJson(`${url}/v3/images/generations`, { prompt: 'x', n: 5 }), 400, 'n');
    assertError(await postJson(`${url}/v3/images/generations`, { prompt: 'x', guidance_scale: 7.3 }), 400, 'guidance_scale');
    assert.equal((await postJson(`${url}/v3/images/generations`, { prompt: 'x', n: 4, guidance_scale: 7.1 })).status, 200);
  });
});

test('generations: max_num_images_per_prompt and max_num_inference_steps are enforced (OVMS getImageGenerationRequestOptionsValidatedFields)', async () => {
  await withApp(one(fakeModel(), { max_num_images_per_prompt: '4', max_num_inference_steps: '100' }), async (url) => {
    assertError(await postJson(`${url}/v3/images/generations`, { prompt: 'x', n: 101 }), 400, 'n');
    assertError(await postJson(`${url}/v3/images/generations`, { prompt: 'x', n: 5 }), 400, 'n');
    assert.equal((await postJson(`${url}/v3/images/generations`, { prompt: 'x', n: 4, num_inference_steps: 100 })).status, 200);
  });
});

test('library errors: invalid arguments are 400 naming the field, engine failures 500 without retries', async () => {
  const failing = fakeModel();
  failing.text2image = async () => {
    throw Object.assign(new (require('..').OvDiffusionError)('ERR_RUNTIME', 'out of memory'));
  };
  await withApp(
    [
      { name: 'sd', model: fakeModel() },
      { name: 'bad', model: failing },
    ],
    async (url) => {
      assertError(await postJson(`${url}/v3/images/generations`, { model: 'sd', prompt: 'x', strength: 0.5 }), 400, 'strength');
      const res = await postJson(`${url}/v3/images/generations`, { model: 'bad', prompt: 'x' });
      assertError(res, 500);
      assert.match(res.json.error.message, /out of memory/);
      assert.equal(res.headers.get('x-should-retry'), 'false');
    },
  );
});

test('a dedicated inpainting model answers edits with a mask only, with a clear 400 otherwise', async () => {
  const model = fakeModel({ tasks: ['inpainting'], className: 'StableDiffusionInpaintPipeline' });
  const png = await makeImage();
  await withApp(one(model), async (url) => {
    const gen = await postJson(`${url}/v3/images/generations`, { prompt: 'x' });
    assertError(gen, 400, 'model');
    assert.match(gen.json.error.message, /inpainting/);
    const form = new FormData();
    form.append('prompt', 'x');
    form.append('image', new Blob([png]), 'a.png');
    assertError(await postForm(`${url}/v3/images/edits`, form), 400, 'mask');
    form.append('mask', new Blob([png]), 'm.png');
    assert.equal((await postForm(`${url}/v3/images/edits`, form)).status, 200);
    assert.equal(model.calls[0].task, 'inpainting');
  });
});

test('edits: multipart text fields are coerced; image without mask is image-to-image, with mask inpainting', async () => {
  const model = fakeModel();
  const png = await makeImage(64, 64);
  const mask = await makeImage(64, 64, 'png', { r: 255, g: 255, b: 255 });
  await withApp(one(model), async (url) => {
    const form = new FormData();
    form.append('image', new Blob([png], { type: 'application/octet-stream' }), 'photo.png'); // file before the fields, octet-stream
    for (const [k, v] of Object.entries({
      model: 'sd',
      prompt: 'jungle',
      n: '2',
      num_inference_steps: '3',
      strength: '0.67',
      guidance_scale: '7',
      rng_seed: '409',
      size: '64x64',
      response_format: 'b64_json',
      quality: 'high',
      user: 'x',
    }))
      form.append(k, v);
    const res = await postForm(`${url}/v3/images/edits`, form);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.data.length, 2);
    const call = model.calls[0];
    assert.equal(call.task, 'image2image');
    assert.ok(Buffer.isBuffer(call.image) && call.image.equals(png));
    assert.equal(call.options.strength, 0.67);
    assert.equal(call.options.guidanceScale, 7);
    assert.equal(call.options.numImagesPerPrompt, 2);
    assert.equal(call.options.seed, 409);

    const inpaint = new FormData();
    inpaint.append('prompt', 'dog');
    inpaint.append('image[]', new Blob([png]), 'cat.png');
    inpaint.append('mask', new Blob([mask]), 'cat_mask.png');
    inpaint.append('size', ''); // OVMS: an empty value means unset
    assert.equal((await postForm(`${url}/v1/images/edits`, inpaint)).status, 200);
    assert.equal(model.calls[1].task, 'inpainting');
    assert.ok(model.calls[1].mask.equals(mask));
    assert.equal(model.calls[1].options.width, undefined);
  });
});

test('edits: jpeg and webp inputs are recognized by their bytes', async () => {
  const model = fakeModel();
  await withApp(one(model), async (url) => {
    for (const format of ['jpeg', 'webp']) {
      const form = new FormData();
      form.append('prompt', 'x');
      form.append('image', new Blob([await makeImage(32, 32, format)], { type: 'image/png' }), 'mislabelled.png');
      assert.equal((await postForm(`${url}/v3/images/edits`, form)).status, 200);
    }
  });
});

test('edits: bad uploads and bad text values are 400 naming the field', async () => {
  const model = fakeModel();
  const png = await makeImage();
  const base = (entries, files = [['image', png]]) => {
    const form = new FormData();
    for (const [k, v] of Object.entries({ prompt: 'x', ...entries })) if (v !== undefined) form.append(k, v);
    for (const [name, bytes, type] of files) form.append(name, new Blob([bytes], { type }), `${name}.png`);
    return form;
  };
  const cases = [
    [base({}, []), 'image'],
    [base({ image: 'not a file' }, []), 'image'],
    [base({}, [['image', Buffer.from('hello, not an image'), 'image/png']]), 'image'],
    [base({}, [['image', Buffer.alloc(0)]]), 'image'],
    [
      base({}, [
        ['image[]', png],
        ['image[]', png],
      ]),
      'image[1]',
    ],
    [base({ mask: 'white' }), 'mask'],
    [
      base({}, [
        ['image', png],
        ['mask', Buffer.from('GIF')],
      ]),
      'mask',
    ],
    [base({ prompt: undefined }), 'prompt'],
    [base({ prompt: '' }), 'prompt'],
    [base({ n: '2x' }), 'n'],
    [base({ n: '    123 ' }), 'n'],
    [base({ n: '123.5' }), 'n'],
    [base({ width: 'true' }), 'width'],
    [base({ num_inference_steps: '-1' }), 'num_inference_steps'],
    [base({ num_inference_steps: '0' }), 'num_inference_steps'],
    [base({ guidance_scale: '123.45.67' }), 'guidance_scale'],
    [base({ guidance_scale: 'NaN' }), 'guidance_scale'],
    [base({ strength: '1.5' }), 'strength'],
    [base({ size: '64x64', width: '64' }), 'width'],
    [base({ response_format: 'gif' }), 'response_format'],
    [base({ stream: 'yes' }), 'stream'],
    [base({ stream: 'true', partial_images: '4' }), 'partial_images'],
    [base({ scheduler: 'nope' }), 'scheduler'],
    [base({ lora_alphas: '{not json' }), 'lora_alphas'],
    [base({ lora_alphas: '[1]' }), 'lora_alphas'],
    [base({ lora_alphas: '{"a": "b"}' }), 'lora_alphas'],
  ];
  await withApp(one(model), async (url) => {
    for (const [form, param] of cases) assertError(await postForm(`${url}/v3/images/edits`, form), 400, param);
    const notMultipart = await postJson(`${url}/v3/images/edits`, { prompt: 'x' });
    assertError(notMultipart, 415);
  });
  assert.equal(model.calls.length, 0);
});

test('edits: a chunked multipart body (Node SDK 6/7 with fs streams) with the files first is accepted', async () => {
  const model = fakeModel();
  const png = await makeImage();
  await withApp(one(model), async (url) => {
    const boundary = 'openai-1234567890';
    const part = (headers, body) =>
      Buffer.concat([
        Buffer.from(`--${boundary}\r\n${headers}\r\n\r\n`),
        Buffer.isBuffer(body) ? body : Buffer.from(body),
        Buffer.from('\r\n'),
      ]);
    const chunks = [
      part('Content-Disposition: form-data; name="image"; filename="x.png"\r\nContent-Type: application/octet-stream', png),
      part('Content-Disposition: form-data; name="prompt"', 'a cat'),
      part('Content-Disposition: form-data; name="lora_alphas"', '{}'),
      part('Content-Disposition: form-data; name="n"', '1'),
      Buffer.from(`--${boundary}--\r\n`),
    ];
    const { port } = new URL(url);
    const status = await new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/v3/images/edits',
          headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'transfer-encoding': 'chunked' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        },
      );
      req.on('error', reject);
      (async () => {
        for (const chunk of chunks) {
          req.write(chunk);
          await new Promise((r) => setTimeout(r, 5));
        }
        req.end();
      })();
    });
    assert.equal(status, 200);
    assert.equal(model.calls[0].prompt, 'a cat');
  });
});

test('too large: a JSON body over 1 MB and an upload over 50 MB are 413', async () => {
  await withApp(one(), async (url) => {
    assertError(await postJson(`${url}/v3/images/generations`, { prompt: 'x'.repeat(1.2e6) }), 413);
    const form = new FormData();
    form.append('prompt', 'x');
    const big = Buffer.alloc(51 * 1024 * 1024);
    Buffer.from(PNG_MAGIC, 'hex').copy(big);
    form.append('image', new Blob([big]), 'big.png');
    assertError(await postForm(`${url}/v3/images/edits`, form), 413, 'image');
  });
});

test('the library pixel limit on decoded images is a 413', async () => {
  const model = fakeModel();
  const { OvDiffusionError } = require('..');
  model.image2image = async () => {
    throw new OvDiffusionError('ERR_INVALID_ARGUMENT', 'image: image exceeds the limit of 67108864 pixels', { param: 'image' });
  };
  await withApp(one(model), async (url) => {
    const form = new FormData();
    form.append('prompt', 'x');
    form.append('image', new Blob([await makeImage()]), 'a.png');
    assertError(await postForm(`${url}/v3/images/edits`, form), 413, 'image');
  });
});

test('models: the list has every model and LoRA alias; retrieve works with slashes, encoded or not', async () => {
  const loras = parseSourceLoras('xray=org/xray@x.safetensors,chalk=org/chalk@c.safetensors,blend=@xray:0.5+@chalk:0.4');
  await withApp(
    [
      { name: 'OpenVINO/stable-diffusion-v1-5-int8-ov', model: fakeModel(), loras },
      { name: 'other', model: fakeModel({ className: 'ZImagePipeline', tasks: ['text2image', 'image2image'] }) },
    ],
    async (url) => {
      // A loaded model reports its pipeline class, family and tasks.
      const other = await (await fetch(`${url}/v3/models/other`)).json();
      assert.deepEqual([other.class_name, other.family, other.tasks], ['ZImagePipeline', 'Z-Image', ['text2image', 'image2image']]);
      const sd = await (await fetch(`${url}/v3/models/OpenVINO%2Fstable-diffusion-v1-5-int8-ov`)).json();
      assert.deepEqual([sd.class_name, sd.family], ['FakePipeline', null]);
      for (const prefix of ['/v3', '/v1', '/v3/v1']) {
        const list = await (await fetch(`${url}${prefix}/models`)).json();
        assert.equal(list.object, 'list');
        assert.deepEqual(list.data.map((m) => m.id).sort(), ['OpenVINO/stable-diffusion-v1-5-int8-ov', 'blend', 'chalk', 'other', 'xray']);
        for (const m of list.data) {
          assert.equal(m.object, 'model');
          assert.ok(Number.isInteger(m.created) && m.created > 1.7e9);
          assert.equal(typeof m.owned_by, 'string');
          // A loaded model lists the schedulers its requests may name (here a UNet model: all but flow matching).
          assert.ok(m.schedulers.includes('DPMPP_2M_KARRAS') && m.schedulers.includes('HEUN') && m.schedulers[0] === 'AUTO', m.id);
          assert.ok(!m.schedulers.includes('FLOW_MATCH_EULER_DISCRETE'), m.id);
        }
      }
      for (const id of ['OpenVINO/stable-diffusion-v1-5-int8-ov', 'OpenVINO%2Fstable-diffusion-v1-5-int8-ov']) {
        const res = await fetch(`${url}/v3/models/${id}`);
        assert.equal(res.status, 200);
        assert.equal((await res.json()).id, 'OpenVINO/stable-diffusion-v1-5-int8-ov');
      }
      const missing = await fetch(`${url}/v1/models/nope`);
      assertError({ status: missing.status, headers: missing.headers, json: await missing.json() }, 404, 'model');
    },
  );
});

test('health: live at once, ready only when every model is loaded', async () => {
  let finish;
  const loading = new Promise((resolve) => {
    finish = resolve;
  });
  await withApp(
    [
      { name: 'a', model: fakeModel() },
      { name: 'b', model: loading },
    ],
    async (url) => {
      assert.equal((await fetch(`${url}/v2/health/live`)).status, 200);
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 503);
      const readyz = await fetch(`${url}/readyz`);
      assert.equal(readyz.status, 503);
      assert.deepEqual((await readyz.json()).models, { a: 'ready', b: 'loading' });
      assert.equal((await fetch(`${url}/v2/models/a/ready`)).status, 200);
      assert.equal((await fetch(`${url}/v2/models/b/ready`)).status, 404);
      // A request to a model still loading waits for it (like OVMS), then runs.
      const pending = postJson(`${url}/v3/images/generations`, { model: 'b', prompt: 'x', num_inference_steps: 1 });
      await new Promise((r) => setTimeout(r, 50));
      finish(fakeModel());
      assert.equal((await pending).status, 200);
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
      assert.equal((await fetch(`${url}/readyz`)).status, 200);
      assert.equal((await fetch(`${url}/v2/models/b/versions/1/ready`)).status, 200);
    },
  );
});

test('auth: with an API key, /v1 and /v3 need "Authorization: Bearer <key>" (401 otherwise); health stays open', async () => {
  await withApp(
    one(),
    async (url) => {
      const none = await postJson(`${url}/v3/images/generations`, { prompt: 'x' });
      assertError(none, 401);
      assert.equal(none.json.error.code, 'invalid_api_key');
      assertError(await postJson(`${url}/v1/images/generations`, { prompt: 'x' }, { authorization: 'Bearer wrong' }), 401);
      assertError(await postJson(`${url}/v1/images/generations`, { prompt: 'x' }, { authorization: 's3cret' }), 401);
      const list = await fetch(`${url}/v3/models`);
      assert.equal(list.status, 401);
      assert.equal(
        (await postJson(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 1 }, { authorization: 'Bearer s3cret' }))
          .status,
        200,
      );
      assert.equal((await fetch(`${url}/v2/health/ready`)).status, 200);
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
    },
    { apiKey: 's3cret' },
  );
});

test('unknown routes and methods answer in the OpenAI error shape', async () => {
  await withApp(one(), async (url) => {
    const missing = await fetch(`${url}/v3/chat/completions`, { method: 'POST' });
    assertError({ status: missing.status, headers: missing.headers, json: await missing.json() }, 404);
    const wrong = await fetch(`${url}/v3/images/generations`);
    assertError({ status: wrong.status, headers: wrong.headers, json: await wrong.json() }, 405);
  });
});

test('LoRA: with library adapters, the model name picks adapters and alphas (OVMS priority: request, composite, adapter, 1)', async () => {
  const loras = parseSourceLoras('xray=org/xray@x.safetensors:0.8,chalk=org/chalk@c.safetensors,blend=@xray:0.5+@chalk');
  const model = fakeModel({ lora: loraLoadOptions(loras, '/models/sdxl', false) });
  await withApp([{ name: 'sdxl', model, loras }], async (url) => {
    const ask = async (body) => {
      const res = await postJson(`${url}/v3/images/generations`, { prompt: 'x', num_inference_steps: 1, ...body });
      assert.equal(res.status, 200, res.text);
      return model.calls.at(-1).options.adapters;
    };
    assert.deepEqual(await ask({ model: 'sdxl' }), []);
    assert.deepEqual(await ask({ model: 'sdxl', lora_alphas: { anything: 1 } }), [], 'OVMS: alphas aimed at the base model have no effect');
    assert.deepEqual(await ask({ model: 'xray' }), [{ name: 'xray', alpha: 0.8 }]);
    assert.deepEqual(await ask({ model: 'chalk' }), [{ name: 'chalk', alpha: 1 }]);
    assert.deepEqual(await ask({ model: 'xray', lora_alphas: { xray: 0.5 } }), [{ name: 'xray', alpha: 0.5 }]);
    assert.deepEqual(await ask({ model: 'blend' }), [
      { name: 'xray', alpha: 0.5 },
      { name: 'chalk', alpha: 1 },
    ]);
    assert.deepEqual(await ask({ model: 'blend', lora_alphas: { xray: 0.8, chalk: 0.2 } }), [
      { name: 'xray', alpha: 0.8 },
      { name: 'chalk', alpha: 0.2 },
    ]);
    assert.deepEqual(await ask({ model: 'blend', lora_alphas: {} }), [
      { name: 'xray', alpha: 0.5 },
      { name: 'chalk', alpha: 1 },
    ]);
    const single = await postJson(`${url}/v3/images/generations`, { model: 'xray', prompt: 'x', lora_alphas: { chalk: 0.5 } });
    assertError(single, 400, 'lora_alphas');
    assert.match(single.json.error.message, /chalk.*xray/);
    const composite = await postJson(`${url}/v3/images/generations`, { model: 'blend', prompt: 'x', lora_alphas: { other: 0.5 } });
    assertError(composite, 400, 'lora_alphas');
    assert.match(composite.json.error.message, /other.*blend/);
    // Multipart: lora_alphas as JSON text, or flattened lora_alphas[alias] fields (Node SDK objects).
    const png = await makeImage();
    for (const [key, value] of [
      ['lora_alphas', '{"xray": 0.3}'],
      ['lora_alphas[xray]', '0.3'],
    ]) {
      const form = new FormData();
      form.append('model', 'xray');
      form.append('prompt', 'x');
      form.append(key, value);
      form.append('image', new Blob([png]), 'a.png');
      assert.equal((await postForm(`${url}/v3/images/edits`, form)).status, 200);
      assert.deepEqual(model.calls.at(-1).options.adapters, [{ name: 'xray', alpha: 0.3 }]);
    }
  });
});

test('LoRA: lora_alphas without adapters, and NPU static adapters, follow the OVMS rules', async () => {
  await withApp(one(), async (url) => {
    const res = await postJson(`${url}/v3/images/generations`, { prompt: 'x', lora_alphas: { a: 1 } });
    assertError(res, 400, 'lora_alphas');
    assert.match(res.json.error.message, /lora_alphas is not supported/);
    assert.equal((await postJson(`${url}/v3/images/generations`, { prompt: 'x', lora_alphas: {}, num_inference_steps: 1 })).status, 200);
  });
  const loras = parseSourceLoras('a=org/a@a.safetensors', { device: 'NPU' });
  const settings = buildModelSettings({ target_device: 'NPU', resolution: '512x512' });
  await withApp(
    [{ name: 'npu', model: fakeModel({ lora: loraLoadOptions(loras, '/models/npu', true) }), loras, settings }],
    async (url) => {
      assertError(await postJson(`${url}/v3/images/generations`, { model: 'npu', prompt: 'x' }), 400, 'model');
      assertError(await postJson(`${url}/v3/images/generations`, { model: 'a', prompt: 'x', lora_alphas: { a: 0.5 } }), 400, 'lora_alphas');
      assert.equal((await postJson(`${url}/v3/images/generations`, { model: 'a', prompt: 'x' })).status, 200);
    },
  );
});

test('requests for different models run in parallel; a disconnected client cancels its generation', async () => {
  const a = fakeModel({ delayMs: 400 });
  const b = fakeModel({ delayMs: 400 });
  await withApp(
    [
      { name: 'a', model: a },
      { name: 'b', model: b },
    ],
    async (url) => {
      const started = Date.now();
      const results = await Promise.all([
        postJson(`${url}/v3/images/generations`, { model: 'a', prompt: 'x' }),
        postJson(`${url}/v3/images/generations`, { model: 'b', prompt: 'x' }),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        [200, 200],
      );
      assert.ok(Date.now() - started < 750, `took ${Date.now() - started} ms`);

      const controller = new AbortController();
      const request = fetch(`${url}/v3/images/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'a', prompt: 'cancel me' }),
        signal: controller.signal,
      });
      await new Promise((r) => setTimeout(r, 100));
      controller.abort();
      await assert.rejects(request);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(a.calls.at(-1).prompt, 'cancel me');
      assert.equal(a.calls.at(-1).options.signal.aborted, true);
    },
  );
});

test('images/models: per name, what it accepts (tasks, LoRA alphas, schedulers, limits), behind the API key', async () => {
  const loras = parseSourceLoras('xray=org/xray@x.safetensors:0.8,chalk=org/chalk@c.safetensors,blend=@xray:0.5+@chalk');
  const model = fakeModel({ lora: loraLoadOptions(loras, '/models/sdxl', false) });
  const settings = buildModelSettings({ resolution: '512x512 768x768', max_num_inference_steps: '40', default_num_inference_steps: '30' });
  let release;
  const loading = new Promise((resolve) => {
    release = () => resolve(fakeModel());
  });
  await withApp(
    [
      { name: 'sdxl', model, loras, settings },
      { name: 'later', model: loading },
    ],
    async (url) => {
      assert.equal((await fetch(`${url}/v3/images/models`)).status, 401);
      const get = async () => (await (await fetch(`${url}/v1/images/models`, { headers: { authorization: 'Bearer k' } })).json()).data;
      const byId = Object.fromEntries((await get()).map((m) => [m.id, m]));
      assert.deepEqual(Object.keys(byId).sort(), ['blend', 'chalk', 'later', 'sdxl', 'xray']);
      const base = byId.sdxl;
      assert.equal(base.object, 'image.model_options');
      assert.deepEqual([base.kind, base.base_model, base.state, base.class_name], ['model', 'sdxl', 'ready', model.className]);
      assert.deepEqual(base.tasks, [...model.tasks]);
      assert.deepEqual(base.lora_alphas, {});
      assert.equal(base.lora_alphas_allowed, true);
      assert.deepEqual(base.sizes, ['512x512', '768x768']);
      assert.deepEqual(
        [base.default_size, base.max_size, base.default_num_inference_steps, base.max_num_inference_steps],
        ['512x512', '768x768', 30, 40],
      );
      assert.ok(base.schedulers.includes('EULER_DISCRETE'));
      assert.deepEqual([byId.xray.kind, byId.xray.base_model, byId.xray.lora_alphas], ['adapter', 'sdxl', { xray: 0.8 }]);
      assert.deepEqual([byId.blend.kind, byId.blend.lora_alphas], ['composite', { xray: 0.5, chalk: 1 }]);
      // A model still loading: its model-dependent options are null until it is ready.
      assert.deepEqual([byId.later.state, byId.later.tasks, byId.later.class_name], ['loading', null, null]);
      assert.equal(byId.later.lora_alphas_allowed, false);
      release();
      await new Promise((resolve) => setTimeout(resolve, 10));
      assert.equal((await get()).find((m) => m.id === 'later').state, 'ready');
    },
    { apiKey: 'k' },
  );
});

test('the playground page: / and its files without the key, a trailing slash when mounted, off with playground: false', async () => {
  const fs = require('fs');
  const path = require('path');
  const express = require('express');
  const { listen } = require('./helpers/server-http');
  const dir = path.join(__dirname, '..', 'dist', 'playground');
  assert.ok(fs.existsSync(path.join(dir, 'index.html')), 'npm run build puts the page in dist/playground');
  await withApp(
    one(),
    async (url) => {
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type'), /^text\/html/);
      assert.match(page.headers.get('content-security-policy'), /default-src 'self'/);
      const html = await page.text();
      for (const file of [...html.matchAll(/(?:src|href)="(playground\/[^"]+)"/g)].map((m) => m[1])) {
        const res = await fetch(`${url}/${file}`);
        assert.equal(res.status, 200, file);
        assert.ok((await res.text()).length > 100, `${file} has content`);
      }
      assert.equal((await fetch(`${url}/playground/nope.js`)).status, 404);
      assert.equal((await fetch(`${url}/v3/models`)).status, 401, 'the API still needs the key');
    },
    { apiKey: 'k' },
  );
  await withApp(
    one(),
    async (url) => {
      assert.equal((await fetch(`${url}/`)).status, 404);
      assert.equal((await fetch(`${url}/playground/main.js`)).status, 404);
    },
    { playground: false },
  );
  // Mounted under /ai: /ai redirects to /ai/ (the page calls the API by relative URLs), which serves the page.
  const { createApp } = require('../dist/server/app');
  const app = createApp({ models: one() });
  const outer = express();
  outer.use('/ai', app);
  const server = await listen(outer);
  try {
    const bare = await fetch(`${server.url}/ai?x=1`, { redirect: 'manual' });
    assert.equal(bare.status, 308);
    assert.equal(bare.headers.get('location'), '/ai/?x=1');
    assert.equal((await fetch(`${server.url}/ai/`)).status, 200);
    assert.equal((await fetch(`${server.url}/ai/playground/main.js`)).status, 200);
  } finally {
    await server.close();
    app.dispose();
  }
});
