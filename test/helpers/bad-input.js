'use strict';
// The bad-input corpus, as tables: every request field with values of the wrong kind (down to JSON nested 500,000
// levels deep), out-of-range values, malformed multipart bodies, raw HTTP that lies about its length or stalls,
// Expect headers, and auth on every route; each case with the answer it must get. Used by
// test/server-bad-input.test.js and bench/fuzz.js (whose mutations start from the valid requests here).
const assert = require('node:assert/strict');
const zlib = require('zlib');
const { FIELD_TYPES } = require('../../dist/server/fields');
const { fakeModel, makeImage } = require('./server-fakes');
const { head, request, multipart, send } = require('./raw-http');

const KEY = 'test-key-7f3a';
const AUTH = { Authorization: `Bearer ${KEY}` };
const TIMEOUTS = { headersTimeoutMs: 1500, requestTimeoutMs: 3000, bodyTimeoutMs: 1000 };
const MAX_RESOLUTION = 512;
const GEN = '/v1/images/generations';
const EDITS = '/v1/images/edits';
const VARIATIONS = '/v3/images/variations';

// ---------------------------------------------------------------------------------------------------------------
// Inputs
const deepArray = (depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const deepObject = (depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
const DEEP = deepArray(10000);

/** JSON texts of the wrong kind for each field type (inserted as raw JSON). */
const BAD_JSON_VALUES = {
  string: ['123', 'true', '[]', '{}', DEEP, deepObject(5000)],
  int: ['"5"', '1.5', 'true', '[]', '{}', DEEP, '1e400'],
  float: ['"1.0"', 'true', '[1]', '{}', DEEP],
  bool: ['"true"', '1', '[]', DEEP],
  object: ['"x"', '5', '[]', '{"a":"x"}', `{"a":${DEEP}}`, DEEP],
  string_or_bool: ['123', '[]', '{}', DEEP, deepObject(5000)],
};
/** Multipart text values of the wrong kind per field type (every type also gets a repeated and a nested field). */
const BAD_TEXT_VALUES = {
  string: [],
  int: ['abc', '1.5', '1e3x'],
  float: ['x1', '1,5'],
  bool: ['yes', '1'],
  object: ['{bad json', '[1]'],
  string_or_bool: [],
};

/** A PNG with only a header of the given size (IDAT garbage): what a decoder would see before decoding. */
function pngHeaderOnly(width, height) {
  const chunk = (type, data) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body) >>> 0);
    return Buffer.concat([length, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(64))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const json = (path, text, headers = {}) => [request('POST', path, { ...AUTH, 'Content-Type': 'application/json', ...headers }, text)];
const form = (path, parts, headers = {}) => {
  const { body, contentType } = multipart(parts);
  return [request('POST', path, { ...AUTH, 'Content-Type': contentType, ...headers }, body)];
};
const rawForm = (path, contentType, body, headers = {}) => [
  request('POST', path, { ...AUTH, 'Content-Type': contentType, ...headers }, body),
];

// ---------------------------------------------------------------------------------------------------------------
// The tables. A case: {name, pieces (what is written), status (a number, or 'any4xx'), code?, param?, noContinue?,
// withinMs?}.
function jsonFieldCases() {
  const cases = [];
  for (const [field, type] of Object.entries(FIELD_TYPES)) {
    for (const bad of BAD_JSON_VALUES[type]) {
      const text = `{"model":"sd","prompt":"p","${field}":${bad}}`;
      const shown = bad.length > 20 ? `${bad.slice(0, 12)}... (${bad.length} chars)` : bad;
      cases.push({ name: `json ${field} = ${shown}`, pieces: json(GEN, text), status: 400, param: field, code: 'invalid_value' });
    }
  }
  return cases;
}

function jsonValueCases() {
  const body = (extra) => JSON.stringify({ model: 'sd', prompt: 'p', ...extra });
  const table = [
    [{ size: '0x0' }, 400, 'size'],
    [{ size: '-1x5' }, 400, 'size'],
    [{ size: '512' }, 400, 'size'],
    [{ size: 'axb' }, 400, 'size'],
    [{ size: ' 512x512' }, 400, 'size'],
    [{ size: '99999999999999999999x8' }, 400, 'size'],
    [{ size: '99999x99999' }, 400, 'size', 'size_too_large'],
    [{ size: `${MAX_RESOLUTION + 8}x${MAX_RESOLUTION}` }, 400, 'size', 'size_too_large'],
    [{ width: MAX_RESOLUTION * 4, height: 64 }, 400, 'width', 'size_too_large'],
    [{ size: '64x64', width: 64 }, 400, 'width'],
    [{ n: 0 }, 400, 'n'],
    [{ n: -1 }, 400, 'n'],
    [{ n: 5 }, 400, 'n'],
    [{ n: 1, num_images_per_prompt: 1 }, 400, 'num_images_per_prompt'],
    [{ num_inference_steps: 0 }, 400, 'num_inference_steps'],
    [{ num_inference_steps: 61 }, 400, 'num_inference_steps'],
    [{ strength: 1.5 }, 400, 'strength'],
    [{ strength: -0.1 }, 400, 'strength'],
    [{ strength: 0.5 }, 400, 'strength'],
    [{ rng_seed: -1 }, 400, 'rng_seed'],
    [{ rng_seed: 2 ** 53 }, 400, 'rng_seed'],
    [{ output_compression: 101 }, 400, 'output_compression'],
    [{ output_compression: -1 }, 400, 'output_compression'],
    [{ partial_images: 4 }, 400, 'partial_images'],
    [{ stream: true, response_format: 'url' }, 400, 'response_format'],
    [{ response_format: 'xml' }, 400, 'response_format'],
    [{ output_format: 'gif' }, 400, 'output_format'],
    [{ background: 'transparent' }, 400, 'background'],
    [{ scheduler: 'FOO' }, 400, 'scheduler'],
    [{ model: 'nope' }, 404, 'model', 'model_not_found'],
    [{ model: 'x'.repeat(100000) }, 404, 'model', 'model_not_found'],
    [{ model: 'sd\u202e\u0000' }, 404, 'model', 'model_not_found'],
    [{ lora_alphas: { ghost: 0.5 } }, 400, 'lora_alphas'],
    [{ prompt: undefined }, 400, 'prompt', 'missing_required_parameter'],
  ];
  const cases = table.map(([extra, status, param, code]) => ({
    name: `json value ${JSON.stringify(extra).slice(0, 60)}`,
    pieces: json(GEN, body(extra)),
    status,
    param,
    code,
  }));
  const bodies = [
    ['empty body', '', 400],
    ['null', 'null', 400],
    ['an array', '[]', 400],
    ['a string', '"prompt"', 400],
    ['a number', '123', 400],
    ['truncated', '{"prompt":"p"', 400, 'invalid_json'],
    ['trailing comma', '{"prompt":"p",}', 400, 'invalid_json'],
    ['single quotes', "{'prompt':'p'}", 400, 'invalid_json'],
    ['NaN literal', '{"prompt":"p","strength":NaN}', 400, 'invalid_json'],
    ['a 500,000-deep array as the body', deepArray(500000), 400],
    ['a 500,000-deep array as the prompt', `{"prompt":${deepArray(500000)}}`, 400],
    ['a 100,000-deep object as n', `{"prompt":"p","n":${deepObject(100000)}}`, 400],
    ['a binary body', Buffer.from([0, 1, 2, 0xff, 0xfe, 0x00, 0x7b]), 400],
  ];
  for (const [name, text, status, code] of bodies) cases.push({ name: `json body: ${name}`, pieces: json(GEN, text), status, code });
  const encodings = [
    ['gzip garbage', 'gzip', Buffer.from('not gzip at all'), 400],
    ['deflate garbage', 'deflate', Buffer.from('not deflate'), 400],
    ['unsupported encoding', 'zstd-x', Buffer.from('{}'), 415],
    ['gzip bomb over the limit', 'gzip', zlib.gzipSync(Buffer.from(`{"prompt":"${'a'.repeat(8 * 1024 * 1024)}"}`)), 413],
  ];
  for (const [name, encoding, bytes, status] of encodings)
    cases.push({ name: `json body: ${name}`, pieces: json(GEN, bytes, { 'Content-Encoding': encoding }), status });
  cases.push({
    name: 'json body: charset latin1',
    pieces: json(GEN, '{"prompt":"p"}', { 'Content-Type': 'application/json; charset=latin1' }),
    status: 415,
  });
  cases.push({
    name: 'json body: declared 2 MB and sent',
    pieces: json(GEN, `{"prompt":"${'a'.repeat(2 * 1024 * 1024)}"}`),
    status: 413,
    code: 'request_too_large',
  });
  return cases;
}

function multipartFieldCases(image) {
  const cases = [];
  const base = (extra) => [
    { name: 'model', value: 'sd' },
    { name: 'prompt', value: 'p' },
    { name: 'image', filename: 'a.png', data: image },
    ...extra,
  ];
  for (const [field, type] of Object.entries(FIELD_TYPES)) {
    const others = (extra) => base(extra).filter((p) => p.name !== field || extra.includes(p));
    cases.push({
      name: `multipart ${field} given twice`,
      pieces: form(
        EDITS,
        others([
          { name: field, value: 'a' },
          { name: field, value: 'b' },
        ]),
      ),
      status: 400,
      param: field,
    });
    cases.push({
      name: `multipart ${field}[x] (an object)`,
      pieces: form(EDITS, others([{ name: `${field}[x]`, value: '1' }])),
      status: 400,
      param: field,
    });
    for (const bad of BAD_TEXT_VALUES[type])
      cases.push({
        name: `multipart ${field} = '${bad}'`,
        pieces: form(EDITS, others([{ name: field, value: bad }])),
        status: 400,
        param: field,
      });
  }
  return cases;
}

function multipartBodyCases(image) {
  const boundary = 'ovdBoundary7MA4YWxkTrZu0gW';
  const valid = multipart([
    { name: 'prompt', value: 'p' },
    { name: 'image', filename: 'a.png', data: image },
  ]);
  const filePart = (name, data, filename = 'a.png', type = 'image/png') => ({ name, filename, type, data });
  const cases = [
    ['no boundary', 'multipart/form-data', valid.body, 400, 'invalid_multipart'],
    ['empty boundary', 'multipart/form-data; boundary=""', valid.body, 400, 'invalid_multipart'],
    ['a boundary that does not match the body', 'multipart/form-data; boundary=somethingElse', valid.body, 400, 'invalid_multipart'],
    ['a truncated body', valid.contentType, valid.body.subarray(0, valid.body.length - 40), 400, 'invalid_multipart'],
    ['a body cut inside a part header', valid.contentType, valid.body.subarray(0, 60), 400, 'invalid_multipart'],
    ['an empty body', valid.contentType, Buffer.alloc(0), 400, 'invalid_multipart'],
    ['only the closing boundary', valid.contentType, Buffer.from(`--${boundary}--\r\n`), 400],
    [
      'a garbage part header',
      valid.contentType,
      Buffer.from(`--${boundary}\r\nthis is no header\r\n\r\nvalue\r\n--${boundary}--\r\n`),
      400,
    ],
    [
      'a part header of 100 KB',
      valid.contentType,
      Buffer.from(`--${boundary}\r\nX-Junk: ${'j'.repeat(100000)}\r\n\r\nvalue\r\n--${boundary}--\r\n`),
      400,
    ],
    [
      'a part without Content-Disposition',
      valid.contentType,
      Buffer.from(`--${boundary}\r\nContent-Type: text/plain\r\n\r\nvalue\r\n--${boundary}--\r\n`),
      400,
    ],
    // busboy parses bytes after the closing boundary: a new part that is cut off makes it wait for ever (bench/fuzz.js).
    [
      'a complete form, then the start of a second one',
      valid.contentType,
      Buffer.concat([valid.body, valid.body.subarray(0, 300)]),
      400,
      'invalid_multipart',
    ],
    ['binary garbage', valid.contentType, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)), 400],
    ['multipart/mixed', `multipart/mixed; boundary=${boundary}`, valid.body, 415],
    ['JSON sent to edits', 'application/json', Buffer.from('{"prompt":"p"}'), 415],
    ['no Content-Type', undefined, valid.body, 415],
    ['declared 200 MB and sent a little', valid.contentType, valid.body, 413, 'request_too_large', { 'Content-Length': 200 * 1024 * 1024 }],
  ].map(([name, contentType, body, status, code, headers]) => ({
    name: `multipart body: ${name}`,
    pieces: headers
      ? [head('POST', EDITS, { ...AUTH, 'Content-Type': contentType, ...headers }), body]
      : contentType === undefined
        ? [request('POST', EDITS, AUTH, body)]
        : rawForm(EDITS, contentType, body),
    status,
    code,
    withinMs: headers ? 1000 : undefined,
  }));
  const parts = [
    [
      'a non-image file',
      [{ name: 'prompt', value: 'p' }, filePart('image', Buffer.from('hello, not an image'))],
      400,
      'invalid_image_format',
      'image',
    ],
    ['an empty file', [{ name: 'prompt', value: 'p' }, filePart('image', Buffer.alloc(0))], 400, 'invalid_image', 'image'],
    [
      'the image as a text field',
      [
        { name: 'prompt', value: 'p' },
        { name: 'image', value: 'base64...' },
      ],
      400,
      'invalid_image',
      'image',
    ],
    ['no image', [{ name: 'prompt', value: 'p' }], 400, 'missing_required_parameter', 'image'],
    ['two images', [{ name: 'prompt', value: 'p' }, filePart('image[]', image), filePart('image[]', image)], 400, 'too_many_images'],
    [
      '21 images',
      [{ name: 'prompt', value: 'p' }, ...Array.from({ length: 21 }, () => filePart('image[]', image))],
      413,
      'request_too_large',
    ],
    [
      'two masks',
      [{ name: 'prompt', value: 'p' }, filePart('image', image), filePart('mask', image), filePart('mask', image)],
      400,
      undefined,
      'mask',
    ],
    [
      'the mask as a text field',
      [{ name: 'prompt', value: 'p' }, filePart('image', image), { name: 'mask', value: 'x' }],
      400,
      'invalid_image',
      'mask',
    ],
    [
      'a PNG signature then garbage',
      [{ name: 'prompt', value: 'p' }, filePart('image', Buffer.concat([image.subarray(0, 8), Buffer.alloc(100, 7)]))],
      400,
      'invalid_image',
      'image',
    ],
    [
      'a header claiming 20000x20000 pixels (a bomb)',
      [{ name: 'prompt', value: 'p' }, filePart('image', pngHeaderOnly(20000, 20000))],
      413,
      'image_too_large',
      'image',
    ],
    [
      'a header claiming 65535x65535 pixels',
      [{ name: 'prompt', value: 'p' }, filePart('image', pngHeaderOnly(65535, 65535))],
      413,
      'image_too_large',
      'image',
    ],
    [
      'a 4104x8 image and no size (output over max_resolution)',
      [{ name: 'prompt', value: 'p' }, filePart('image', 'WIDE')],
      400,
      'size_too_large',
      'image',
    ],
    ['a field name of 300 characters', [{ name: 'p'.repeat(300), value: 'p' }, filePart('image', image)], 400, 'invalid_multipart'],
    [
      'a field nested 4 deep',
      [{ name: 'prompt', value: 'p' }, { name: 'a[b][c][d]', value: 'x' }, filePart('image', image)],
      400,
      'invalid_multipart',
    ],
    [
      'a field with array index 999999',
      [{ name: 'prompt', value: 'p' }, { name: 'x[999999]', value: 'x' }, filePart('image', image)],
      400,
      'invalid_multipart',
    ],
    [
      'a field value over 1 MB',
      [{ name: 'prompt', value: 'p'.repeat(1024 * 1024 + 1) }, filePart('image', image)],
      413,
      'request_too_large',
    ],
    [
      '201 text fields',
      [...Array.from({ length: 201 }, (_, i) => ({ name: `f${i}`, value: 'x' })), filePart('image', image)],
      413,
      'request_too_large',
    ],
  ];
  for (const [name, list, status, code, param] of parts) {
    cases.push({
      name: `multipart part: ${name}`,
      pieces: form(EDITS, list),
      status,
      code,
      param,
      needsWide: list.some((p) => p.data === 'WIDE'),
    });
  }
  cases.push({
    name: 'multipart part: variations with a mask',
    pieces: form(VARIATIONS, [filePart('image', image), filePart('mask', image)]),
    status: 400,
    param: 'mask',
  });
  cases.push({
    name: 'multipart part: variations of a 4104x8 image (output over max_resolution)',
    pieces: form(VARIATIONS, [filePart('image', 'WIDE')]),
    status: 400,
    code: 'size_too_large',
    needsWide: true,
  });
  cases.push({
    name: 'multipart part: variations that stream',
    pieces: form(VARIATIONS, [filePart('image', image), { name: 'stream', value: 'true' }]),
    status: 400,
    param: 'stream',
  });
  return cases;
}

const chunk = (text) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;

function httpCases(image) {
  const small = multipart([
    { name: 'prompt', value: 'p' },
    { name: 'image', filename: 'a.png', data: image },
  ]);
  const big = String(100 * 1024 ** 3); // 100 GB
  const cases = [
    {
      name: 'JSON declaring 100 GB, body never sent',
      pieces: [head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': big })],
      status: 413,
      code: 'request_too_large',
      withinMs: 1000,
    },
    {
      name: 'multipart declaring 100 GB, body never sent',
      pieces: [head('POST', EDITS, { ...AUTH, 'Content-Type': small.contentType, 'Content-Length': big })],
      status: 413,
      code: 'request_too_large',
      withinMs: 1000,
    },
    {
      name: 'Expect: 100-continue with 100 GB (JSON): 413, no 100 Continue',
      pieces: [head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': big, Expect: '100-continue' })],
      status: 413,
      noContinue: true,
      withinMs: 1000,
    },
    {
      name: 'Expect: 100-continue with 100 GB (multipart): 413, no 100 Continue',
      pieces: [head('POST', EDITS, { ...AUTH, 'Content-Type': small.contentType, 'Content-Length': big, Expect: '100-continue' })],
      status: 413,
      noContinue: true,
      withinMs: 1000,
    },
    {
      name: 'Expect: 100-continue without the key: 401, no 100 Continue',
      pieces: [head('POST', GEN, { 'Content-Type': 'application/json', 'Content-Length': 20, Expect: '100-continue' })],
      status: 401,
      noContinue: true,
      withinMs: 1000,
    },
    {
      name: 'Expect: 100-continue on an unknown route: 404, no 100 Continue',
      pieces: [head('POST', '/v1/nothing', { ...AUTH, 'Content-Length': 20, Expect: '100-continue' })],
      status: 404,
      noContinue: true,
      withinMs: 1000,
    },
    {
      name: 'Expect: 100-continue with the wrong content type: 415, no 100 Continue',
      pieces: [head('POST', EDITS, { ...AUTH, 'Content-Type': 'text/plain', 'Content-Length': 20, Expect: '100-continue' })],
      status: 415,
      noContinue: true,
      withinMs: 1000,
    },
    {
      name: 'Expect: something-else',
      pieces: json(GEN, '{"prompt":"p"}', { Expect: 'something-else' }),
      status: 417,
      code: 'expectation_failed',
    },
    {
      name: 'a JSON body that stops (half sent)',
      pieces: [head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': 100 }), '{"prompt":'],
      status: 408,
      code: 'body_timeout',
      withinMs: TIMEOUTS.bodyTimeoutMs + 1500,
    },
    {
      name: 'a multipart body that stops (half sent)',
      pieces: [
        head('POST', EDITS, { ...AUTH, 'Content-Type': small.contentType, 'Content-Length': small.body.length }),
        small.body.subarray(0, 200),
      ],
      status: 408,
      code: 'body_timeout',
      withinMs: TIMEOUTS.bodyTimeoutMs + 1500,
    },
    {
      name: 'a chunked body that stops',
      pieces: [head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }), '5\r\n{"pro\r\n'],
      status: 408,
      code: 'body_timeout',
      withinMs: TIMEOUTS.bodyTimeoutMs + 1500,
    },
    {
      name: 'a body dripping one byte per 400 ms',
      pieces: [
        head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': 1000 }),
        ...Array.from({ length: 15 }, () => ['x', { wait: 400 }]).flat(),
      ],
      status: 408,
      code: 'request_timeout',
      withinMs: TIMEOUTS.requestTimeoutMs + 1500,
    },
    {
      name: 'headers that never end',
      pieces: [`POST ${GEN} HTTP/1.1\r\nHost: test\r\n`],
      status: 408,
      withinMs: TIMEOUTS.headersTimeoutMs + 2000,
    },
    { name: 'a garbage request line', pieces: ['GARBAGE\r\n\r\n'], status: 400, code: 'invalid_http' },
    { name: 'a request line with a space in the path', pieces: ['GET /v1/mod els HTTP/1.1\r\nHost: x\r\n\r\n'], status: 400 },
    { name: 'HTTP/9.9', pieces: ['GET /v1/models HTTP/9.9\r\nHost: x\r\n\r\n'], status: 'any4xx' },
    {
      name: 'Content-Length: abc',
      pieces: [head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': 'abc' })],
      status: 400,
    },
    {
      name: 'Content-Length: -1',
      pieces: [head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': '-1' })],
      status: 400,
    },
    {
      name: 'two different Content-Lengths',
      pieces: [head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': ['5', '6'] }), '{"a":1}'],
      status: 400,
    },
    {
      name: 'Content-Length and Transfer-Encoding',
      pieces: [
        head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': '7', 'Transfer-Encoding': 'chunked' }),
        '0\r\n\r\n',
      ],
      status: 400,
    },
    {
      name: 'a malformed chunk size',
      pieces: [
        head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }),
        'zz\r\nabc\r\n0\r\n\r\n',
      ],
      status: 400,
    },
    {
      name: 'a chunked JSON body over 1 MB',
      pieces: [
        head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' }),
        ...Array.from({ length: 5 }, () => `40000\r\n${'a'.repeat(0x40000)}\r\n`),
        '0\r\n\r\n',
      ],
      status: 413,
    },
    {
      name: 'a chunked multipart body over the upload limit',
      pieces: [
        head('POST', EDITS, { ...AUTH, 'Content-Type': small.contentType, 'Transfer-Encoding': 'chunked' }),
        // A file part that never ends: 110 chunks of 1 MB, past the 104 MB multipart limit, and no final chunk.
        chunk(`--${small.boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n\r\n`),
        ...Array.from({ length: 110 }, () => chunk('a'.repeat(0x100000))),
      ],
      status: 413,
      code: 'request_too_large',
    },
    { name: 'headers of 40 KB', pieces: [head('GET', '/v1/models', { ...AUTH, 'X-Big': 'b'.repeat(40000) })], status: 431 },
    { name: 'GET on generations', pieces: [request('GET', GEN, AUTH)], status: 405 },
    { name: 'PUT on edits', pieces: [request('PUT', EDITS, AUTH, '{}')], status: 405 },
    { name: 'an unknown route', pieces: [request('POST', '/v1/images/nothing', AUTH, '{}')], status: 404 },
    { name: 'a path with ..', pieces: [request('GET', '/v1/images/../../../etc/passwd', AUTH)], status: 404 },
    { name: 'a model id of %00', pieces: [request('GET', '/v1/models/%00', AUTH)], status: 'any4xx' },
    { name: 'a model id of bad percent-encoding', pieces: [request('GET', '/v1/models/%E0%A4%A', AUTH)], status: 'any4xx' },
    { name: 'a path of 8 KB', pieces: [request('GET', `/v1/${'p'.repeat(8000)}`, AUTH)], status: 404 },
    { name: 'an unknown image id', pieces: [request('GET', '/generated-images/0000000000000000.png')], status: 404 },
    { name: 'a traversal image id', pieces: [request('GET', '/generated-images/..%2f..%2fpackage.json')], status: 404 },
  ];
  return cases;
}

function authCases() {
  const routes = [
    ['POST', GEN],
    ['POST', EDITS],
    ['POST', VARIATIONS],
    ['GET', '/v1/models'],
    ['GET', '/v1/models/sd'],
    ['GET', '/v3/v1/models'],
    ['GET', '/v3/images/jobs'],
    ['GET', '/v1/images/jobs/imgjob_x'],
    ['GET', '/v3/images/jobs/imgjob_x/events'],
    ['GET', '/v3/images/jobs/imgjob_x/content'],
    ['DELETE', '/v3/images/jobs/imgjob_x'],
  ];
  const variants = [
    ['no Authorization', {}],
    ['a wrong key', { Authorization: 'Bearer wrong' }],
    ['Basic auth', { Authorization: 'Basic dGVzdDp0ZXN0' }],
    ['Bearer and nothing', { Authorization: 'Bearer ' }],
    ['the key without Bearer', { Authorization: KEY }],
    ['a key of 8 KB', { Authorization: `Bearer ${'k'.repeat(8000)}` }],
    ['the key with a suffix', { Authorization: `Bearer ${KEY}x` }],
  ];
  const cases = [];
  for (const [method, path] of routes)
    for (const [name, headers] of variants)
      cases.push({
        name: `auth ${method} ${path}: ${name}`,
        pieces: [request(method, path, { ...headers, 'Content-Type': 'application/json' }, method === 'POST' ? '{"prompt":"p"}' : '')],
        status: 401,
        code: 'invalid_api_key',
      });
  return cases;
}

// ---------------------------------------------------------------------------------------------------------------
function assertOpenAiError(res, c) {
  const context = `${c.name}: ${res.status} ${res.body?.toString('utf8').slice(0, 300)}`;
  if (c.status === 'any4xx') assert.ok(res.status >= 400 && res.status < 500, context);
  else assert.equal(res.status, c.status, context);
  assert.match(res.headers['content-type'] ?? '', /^application\/json/, context);
  assert.ok(res.json && typeof res.json.error === 'object', context);
  const { error } = res.json;
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], context);
  assert.equal(typeof error.message, 'string', context);
  assert.ok(error.message.length > 5 && error.message.length < 1100, context);
  assert.doesNotMatch(error.message, /[\u0000-\u001f\u202a-\u202e\u2066-\u2069]/, context); // eslint-disable-line no-control-regex
  assert.equal(error.type, 'invalid_request_error', context);
  if (c.param !== undefined) assert.equal(error.param, c.param, context);
  if (c.code !== undefined) assert.equal(error.code, c.code, context);
  if (c.noContinue) assert.deepEqual(res.interim, [], `${c.name}: no 100 Continue before a refusal`);
  if (c.withinMs !== undefined) assert.ok(res.ms < c.withinMs, `${c.name}: answered in ${Math.round(res.ms)} ms, limit ${c.withinMs}`);
}

async function startServer(options = {}, timeouts = TIMEOUTS) {
  const { createApp } = require('../../dist/server/app');
  const { createHttpServer } = require('../../dist/server/body');
  const { buildModelSettings } = require('../../dist/server/settings');
  const { createLogger } = require('../../dist/server/log');
  const lines = [];
  const logger = createLogger('DEBUG', (line) => lines.push(line));
  const model = fakeModel({ sizeFromImage: true });
  const app = createApp({
    models: [
      {
        name: 'sd',
        model,
        settings: buildModelSettings({
          max_resolution: `${MAX_RESOLUTION}x${MAX_RESOLUTION}`,
          max_num_images_per_prompt: '4',
          max_num_inference_steps: '60',
        }),
      },
    ],
    apiKey: KEY,
    logger,
    serving: { timeouts },
    ...options,
  });
  const server = createHttpServer(app, timeouts);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    app,
    model,
    lines,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
        app.dispose();
      }),
  };
}

/** A valid request of each kind must still work. */
async function assertValidRequestsWork(url, image) {
  const gen = await send(url, json(GEN, JSON.stringify({ model: 'sd', prompt: 'a fox', size: '64x64' })));
  assert.equal(gen.status, 200, gen.body.toString());
  assert.equal(gen.json.data.length, 1);
  const edit = await send(
    url,
    form(EDITS, [
      { name: 'prompt', value: 'p' },
      { name: 'image', filename: 'a.png', data: image },
    ]),
  );
  assert.equal(edit.status, 200, edit.body.toString());
  assert.equal(edit.json.size, '64x64');
  const variation = await send(url, form(VARIATIONS, [{ name: 'image', filename: 'a.png', data: image }]));
  assert.equal(variation.status, 200, variation.body.toString());
  // Expect: 100-continue done right: the head, the 100, then the body.
  const body = JSON.stringify({ prompt: 'p', size: '64x64' });
  const expect = await send(url, [
    head('POST', GEN, { ...AUTH, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), Expect: '100-continue' }),
    { wait: 200 },
    body,
  ]);
  assert.equal(expect.status, 200, expect.body.toString());
  assert.deepEqual(expect.interim, [100]);
}

/** Every case of the tables; the 4104x8 upload is put in where a case needs it. */
async function allCases() {
  const image = await makeImage(64, 64);
  const wide = await makeImage(4104, 8);
  const groups = [
    ['json', jsonFieldCases()],
    ['json', jsonValueCases()],
    ['multipart', multipartFieldCases(image)],
    ['multipart', multipartBodyCases(image)],
    ['http', httpCases(image)],
    ['auth', authCases()],
  ];
  const cases = groups.flatMap(([group, list]) => list.map((c) => ({ group, ...c })));
  for (const c of cases.filter((c) => c.needsWide)) {
    const variations = c.name.includes('variations');
    const { body, contentType } = multipart(
      variations
        ? [{ name: 'image', filename: 'w.png', data: wide }]
        : [
            { name: 'prompt', value: 'p' },
            { name: 'image', filename: 'w.png', data: wide },
          ],
    );
    c.pieces = [request('POST', variations ? VARIATIONS : EDITS, { ...AUTH, 'Content-Type': contentType }, body)];
  }
  return { cases, image };
}

module.exports = {
  pngHeaderOnly,
  KEY,
  AUTH,
  TIMEOUTS,
  GEN,
  EDITS,
  VARIATIONS,
  json,
  form,
  allCases,
  assertOpenAiError,
  startServer,
  assertValidRequestsWork,
};
