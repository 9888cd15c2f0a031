'use strict';
// The web playground (lib/playground) in a real headless Chromium (Debian's chromium, driven by playwright-core)
// against the real server process on the tiny sd15 fixture with two LoRA adapters and a blend: generate and see the
// image, previews and progress arriving, queue position and cancel, a mask painted with mouse events and sent with
// an inpainting edit, outpainting, a LoRA with its alphas, a validation error in the API's words, the API key box,
// keyboard use and a phone-width screen. Skips, saying why, only when Chromium is missing or cannot start.
// Functions passed to page.evaluate and waitForFunction run in the page.
/* global window, document, MutationObserver */
const test = require('node:test');
const assert = require('node:assert/strict');
const sharp = require('sharp');
const { fixture } = require('./helpers/paths');
const { startCli } = require('./helpers/server-http');
const { launchChromium } = require('./helpers/browser');

const LORAS = `ink=${fixture('loras/sd15-kohya-a.safetensors')}:0.8,wash=${fixture('loras/sd15-kohya-b.safetensors')},blend=@ink:0.5+@wash:0.3`;
const SMALL = { size: '64x64', steps: '3' };
let server;
let browser;
let skipReason;

test.before(async () => {
  server = await startCli(['--model_name', 'sd15', '--model_path', fixture('sd15'), '--max_concurrency', '1', '--source_loras', LORAS]);
  const launched = await launchChromium();
  if (launched.skip) skipReason = launched.skip;
  else browser = launched.browser;
});

test.after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A fresh page on the playground (own storage), with page errors collected; fails the test on any. */
async function openPage(t, url = server.url, viewport = { width: 1100, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  t.after(async () => {
    await context.close();
    assert.deepEqual(errors, [], 'no script errors on the page');
  });
  await page.goto(`${url}/`);
  return page;
}

async function modelsLoaded(page) {
  await page.waitForSelector('#model option', { state: 'attached' });
}

async function fill(page, values) {
  for (const [id, value] of Object.entries(values)) await page.fill(`#${id}`, value);
}

/** Records, from now on, every preview src, progress value and status text the job rows show. */
async function watchJobs(page) {
  await page.evaluate(() => {
    window.seen = { previews: [], progress: [], statuses: [] };
    new MutationObserver((records) => {
      for (const r of records) {
        const el = r.type === 'characterData' ? r.target.parentElement : r.target;
        if (el?.matches?.('.job-preview') && r.attributeName === 'src') window.seen.previews.push(el.src.slice(0, 40));
        if (el?.matches?.('progress') && r.attributeName === 'value') window.seen.progress.push(el.value);
        if (el?.closest?.('.job-status')) window.seen.statuses.push(el.closest('.job-status').textContent);
      }
    }).observe(document.querySelector('#jobs'), { subtree: true, attributes: true, childList: true, characterData: true });
  });
}

const seen = (page) => page.evaluate(() => window.seen);
const resultCount = (page) => page.locator('#gallery li').count();

/** Waits for the gallery to hold `count` results; returns the newest one's parameters text. */
async function waitForResults(page, count) {
  await page.waitForFunction((n) => document.querySelectorAll('#gallery li').length >= n, count, { timeout: 60000 });
  return page.textContent('#gallery li:first-child .result-params');
}

/** The fields of a multipart body: {name: {text, bytes}}. */
/**
 * Generates one small picture from the prompt and takes it as the input of the inpaint/outpaint mode, with Size
 * cleared (the edit keeps the input's size). Loading the input clears the mask, so this waits until it is in.
 */
async function editFirstResult(page, prompt) {
  await fill(page, { prompt, num_inference_steps: SMALL.steps, size: SMALL.size });
  await page.click('#submit');
  await waitForResults(page, 1);
  await page.click('#gallery li:first-child .result-reuse');
  await page.check('input[name="mode"][value="inpaint"]');
  await page.waitForFunction(() => /^Input \d+x\d+/.test(document.querySelector('#input-size').textContent));
  await page.fill('#size', '');
}

function parseMultipart(contentType, body) {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  const parts = {};
  let start = body.indexOf(delimiter) + delimiter.length;
  for (;;) {
    const end = body.indexOf(delimiter, start);
    if (end < 0) break;
    const part = body.subarray(start + 2, end - 2); // after CRLF, before CRLF
    const headerEnd = part.indexOf('\r\n\r\n');
    const headers = part.subarray(0, headerEnd).toString();
    const name = /name="([^"]+)"/.exec(headers)[1];
    const bytes = part.subarray(headerEnd + 4);
    parts[name] = { bytes, text: bytes.toString() };
    start = end + delimiter.length;
  }
  return parts;
}

/** Captures the next POST to `path` (its headers and body) and lets it through. */
async function capture(page, path) {
  let resolve;
  const captured = new Promise((r) => {
    resolve = r;
  });
  await page.route(`**/${path}`, async (route) => {
    const request = route.request();
    resolve({ contentType: request.headers()['content-type'], body: request.postDataBuffer() });
    await route.continue();
  });
  return captured;
}

test('generate from a prompt: the image arrives in the gallery with its parameters, after live previews and progress', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t);
  await modelsLoaded(page);
  assert.match(await page.textContent('#server-status'), /1 model\(s\) ready/);
  await watchJobs(page);
  await fill(page, { prompt: 'a lighthouse at dusk', size: '64x64', num_inference_steps: '6', rng_seed: '409' });
  await page.selectOption('#partial_images', '3');
  await page.click('#submit');
  const params = await waitForResults(page, 1);
  assert.match(params, /"a lighthouse at dusk" · model sd15 · text to image · size 64x64 · steps 6 · seed 409/);
  const image = page.locator('#gallery li:first-child img');
  assert.deepEqual(await image.evaluate((img) => [img.complete, img.naturalWidth, img.naturalHeight]), [true, 64, 64]);
  // The download link holds the same image, named after the seed.
  const download = page.locator('#gallery li:first-child .result-download');
  assert.equal(await download.getAttribute('download'), 'ov-diffusion-409-0.png');
  const [saved] = await Promise.all([page.waitForEvent('download'), download.click()]);
  assert.equal(saved.suggestedFilename(), 'ov-diffusion-409-0.png');
  const png = require('fs').readFileSync(await saved.path());
  assert.deepEqual([(await sharp(png).metadata()).width, (await sharp(png).metadata()).height], [64, 64]);
  // The same request through the API gives the same pixels (the page shows what the server made).
  const direct = await (
    await fetch(`${server.url}/v3/images/generations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sd15', prompt: 'a lighthouse at dusk', size: '64x64', num_inference_steps: 6, rng_seed: 409 }),
    })
  ).json();
  const pixels = async (bytes) => (await sharp(bytes).raw().toBuffer()).toString('base64');
  assert.equal(await pixels(png), await pixels(Buffer.from(direct.data[0].b64_json, 'base64')));

  const watched = await seen(page);
  assert.equal(watched.previews.length, 3, `three previews were shown: ${JSON.stringify(watched)}`);
  assert.ok(
    watched.previews.every((src) => src.startsWith('data:image/png;base64,')),
    'previews are images',
  );
  assert.ok(
    watched.statuses.some((s) => /^Step \d of 6$/.test(s)),
    `step statuses: ${watched.statuses.join(' | ')}`,
  );
  const progress = watched.progress.map(Number);
  assert.ok(progress.length >= 3 && progress.at(-1) === 100, `progress values: ${progress}`);
  assert.deepEqual(
    progress,
    [...progress].sort((a, b) => a - b),
    'progress only grows',
  );
});

test('queue positions, then cancel: a queued job, the running one, and the rest; at most 4 followed at once', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t);
  await modelsLoaded(page);
  await fill(page, { prompt: 'a slow one', size: '64x64', num_inference_steps: '100' });
  await page.selectOption('#partial_images', '0');
  await page.click('#submit');
  await page.waitForSelector('#jobs li[data-status="in_progress"]');
  // --max_concurrency 1: the next ones wait, in order.
  for (let count = 1; count <= 3; count++) {
    await page.click('#submit');
    await page.waitForFunction((n) => document.querySelectorAll('#jobs li[data-status="queued"]').length === n, count);
  }
  const positions = await page.locator('#jobs li[data-status="queued"] .job-status').allTextContents();
  assert.deepEqual(positions.sort(), ['Queued: position 1', 'Queued: position 2', 'Queued: position 3']);
  await page.click('#submit');
  await page.waitForSelector('#error:not([hidden])');
  assert.match(await page.textContent('#error'), /at most 4 jobs at once/);
  assert.equal(await page.locator('#jobs li').count(), 4, 'the fifth was not sent');

  const jobRow = (status) => page.locator(`#jobs li[data-status="${status}"]`).first();
  const cancel = async (row) => {
    const id = await row.getAttribute('data-job-id');
    await row.locator('.job-cancel').click();
    await page.waitForSelector(`#jobs li[data-job-id="${id}"][data-status="cancelled"]`);
    assert.equal(await page.textContent(`#jobs li[data-job-id="${id}"] .job-status`), 'Cancelled');
  };
  // The last queued one leaves the queue; the others move up as the running one is cancelled.
  await cancel(page.locator('#jobs li[data-status="queued"]', { hasText: 'position 3' }));
  await cancel(jobRow('in_progress'));
  await page.waitForFunction(() => {
    const queued = [...document.querySelectorAll('#jobs li[data-status="queued"] .job-status')].map((p) => p.textContent);
    return queued.length === 1 && queued[0] === 'Queued: position 1';
  });
  await cancel(jobRow('in_progress'));
  await cancel(jobRow('in_progress'));
  for (const job of (await (await fetch(`${server.url}/v3/images/jobs?limit=4`)).json()).data) {
    assert.equal(job.status, 'cancelled');
    assert.ok(job.step < 100, `stopped early, at step ${job.step}`);
  }
  assert.equal(await resultCount(page), 0);
});

test('inpainting: a mask painted with the mouse is sent white where painted, and the result arrives', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t);
  await modelsLoaded(page);
  await editFirstResult(page, 'a cat');
  // Paint across its middle.
  assert.match(await page.textContent('#input-size'), /Input 64x64/);
  await page.locator('#brush-size').fill('8');
  await page.locator('#mask-canvas').scrollIntoViewIfNeeded(); // the mouse works in the viewport
  const box = await page.locator('#mask-canvas').boundingBox();
  const at = (fx, fy) => [box.x + box.width * fx, box.y + box.height * fy];
  await page.mouse.move(...at(0.1, 0.5));
  await page.mouse.down();
  for (const fx of [0.3, 0.5, 0.7, 0.9]) await page.mouse.move(...at(fx, 0.5), { steps: 4 });
  await page.mouse.up();
  // The eraser takes a piece back out.
  await page.check('input[name="tool"][value="eraser"]');
  await page.mouse.move(...at(0.8, 0.5));
  await page.mouse.down();
  await page.mouse.move(...at(0.9, 0.5), { steps: 3 });
  await page.mouse.up();
  const coverage = Number(/Mask: (\d+)%/.exec(await page.textContent('#mask-coverage'))[1]);
  assert.ok(coverage > 3 && coverage < 30, `a band is masked: ${coverage}%`);

  const request = capture(page, 'v3/images/edits');
  await page.click('#submit');
  const { contentType, body } = await request;
  const parts = parseMultipart(contentType, body);
  assert.equal(parts.background.text, 'true');
  assert.equal(parts.prompt.text, 'a cat');
  const mask = await sharp(parts.mask.bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([mask.info.width, mask.info.height], [64, 64]);
  const value = (x, y) => mask.data[y * 64 + x];
  assert.equal(value(32, 32), 255, 'painted: white (repaint)');
  assert.equal(value(32, 5), 0, 'not painted: black (keep)');
  assert.equal(value(54, 32), 0, 'erased: black again');
  assert.ok(
    [...mask.data].every((v) => v === 0 || v === 255),
    'the mask is black and white',
  );
  const image = await sharp(parts.image.bytes).metadata();
  assert.deepEqual([image.width, image.height], [64, 64]);

  const params = await waitForResults(page, 2);
  assert.match(params, /"a cat" · model sd15 · inpainting · size 64x64/);
});

test('outpainting: extending the canvas masks the new border and the result has the larger size', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t);
  await modelsLoaded(page);
  await editFirstResult(page, 'a beach');
  await page.selectOption('#extend-by', '32');
  await page.click('[data-extend="right"]');
  assert.match(await page.textContent('#input-size'), /Input 96x64/);
  const request = capture(page, 'v3/images/edits');
  await page.click('#submit');
  const parts = parseMultipart(...Object.values(await request));
  const mask = await sharp(parts.mask.bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
  assert.deepEqual([mask.info.width, mask.info.height], [96, 64]);
  assert.equal(mask.data[10 * 96 + 80], 255, 'the new border is masked');
  assert.equal(mask.data[10 * 96 + 20], 0, 'the old image is kept');
  assert.match(await waitForResults(page, 2), /inpainting · size 96x64/);
});

test('image to image from an upload, with strength', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t);
  await modelsLoaded(page);
  await page.check('input[name="mode"][value="image"]');
  const upload = await sharp({ create: { width: 80, height: 48, channels: 3, background: '#3060c0' } })
    .png()
    .toBuffer();
  await page.setInputFiles('#upload', { name: 'blue.png', mimeType: 'image/png', buffer: upload });
  await page.waitForFunction(() => /Input 80x48/.test(document.querySelector('#input-size').textContent));
  await fill(page, { prompt: 'a blue sky', num_inference_steps: '4', strength: '0.5' });
  const request = capture(page, 'v3/images/edits');
  await page.click('#submit');
  const parts = parseMultipart(...Object.values(await request));
  assert.equal(parts.strength.text, '0.5');
  assert.equal(parts.mask, undefined, 'image to image sends no mask');
  assert.match(await waitForResults(page, 1), /image to image · size 80x48 .*strength 0\.5/);
});

test('a LoRA: picking an adapter shows its alphas, which go with the request; a blend shows each of its adapters', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t);
  await modelsLoaded(page);
  assert.deepEqual(await page.locator('#lora option').allTextContents(), ['none', 'ink', 'wash', 'blend (blend)']);
  assert.ok(await page.locator('#lora-alphas').isHidden(), 'no alphas without a LoRA');
  await page.selectOption('#lora', 'blend');
  assert.equal(await page.inputValue('#alpha-ink'), '0.5');
  assert.equal(await page.inputValue('#alpha-wash'), '0.3');
  await page.selectOption('#lora', 'ink');
  assert.equal(await page.inputValue('#alpha-ink'), '0.8');
  assert.equal(await page.locator('#alpha-wash').count(), 0);
  await page.getByLabel('ink alpha').fill('0.4');
  await fill(page, { prompt: 'an ink drawing', size: SMALL.size, num_inference_steps: SMALL.steps });
  const request = capture(page, 'v3/images/generations');
  await page.click('#submit');
  const sent = JSON.parse((await request).body.toString());
  assert.equal(sent.model, 'ink');
  assert.deepEqual(sent.lora_alphas, { ink: 0.4 });
  assert.match(await waitForResults(page, 1), /model ink .*alphas \{"ink":0\.4\}/);
});

test('a validation error is shown in the words of the API, and the field it names is marked', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t);
  await modelsLoaded(page);
  await fill(page, { prompt: 'too many steps', size: SMALL.size, num_inference_steps: '1000' });
  await page.click('#submit');
  await page.waitForSelector('#error:not([hidden])');
  const res = await fetch(`${server.url}/v3/images/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'sd15',
      prompt: 'too many steps',
      size: '64x64',
      num_inference_steps: 1000,
      partial_images: 3,
      n: 1,
      background: true,
    }),
  });
  const { error } = await res.json();
  assert.equal(res.status, 400);
  const shown = await page.textContent('#error');
  assert.ok(shown.startsWith(error.message), `shown: ${shown}; the API: ${error.message}`);
  assert.ok(shown.includes(error.param), 'the field is named');
  assert.equal(await page.getAttribute('#num_inference_steps', 'aria-invalid'), 'true');
  assert.equal(await page.locator('#error').getAttribute('role'), 'alert');
  // A bad size too (the server's check, not the browser's).
  await fill(page, { num_inference_steps: '2', size: '65x64x' });
  await page.click('#submit');
  await page.waitForFunction(() => document.querySelector('#size').getAttribute('aria-invalid') === 'true');
  assert.equal(await page.getAttribute('#num_inference_steps', 'aria-invalid'), null, 'the old mark is gone');
  assert.equal(await resultCount(page), 0);
});

test('accessible: every control has a label, and a prompt can be generated with the keyboard alone', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t);
  await modelsLoaded(page);
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea, button, canvas')]
      .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent.trim())))
      .map((el) => el.outerHTML.slice(0, 80)),
  );
  assert.deepEqual(unlabelled, []);
  await page.focus('#prompt');
  await page.keyboard.press('Control+A');
  await page.keyboard.type('typed with the keyboard');
  await page.focus('#size');
  await page.keyboard.type(SMALL.size);
  await page.keyboard.press('Tab');
  await page.keyboard.type(SMALL.steps);
  await page.focus('#submit');
  await page.keyboard.press('Enter');
  assert.match(await waitForResults(page, 1), /"typed with the keyboard" .*size 64x64 · steps 3/);
});

test('a phone-width screen: one column, nothing wider than the screen', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const page = await openPage(t, server.url, { width: 375, height: 800 });
  await modelsLoaded(page);
  await page.check('input[name="mode"][value="inpaint"]');
  const widths = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(widths.scroll <= widths.client, `no horizontal scrolling: ${JSON.stringify(widths)}`);
  const form = await page.locator('#generate').boundingBox();
  const jobs = await page.locator('#jobs-title').boundingBox();
  assert.ok(jobs.y > form.y + form.height - 1, 'the jobs and results come below the form');
});

test('with an API key: the page asks for it, then works with it', async (t) => {
  if (skipReason) return t.skip(skipReason);
  const keyed = await startCli(['--model_name', 'sd15', '--model_path', fixture('sd15')], { env: { API_KEY: 'sesame' } });
  t.after(() => keyed.stop());
  const page = await openPage(t, keyed.url);
  await page.waitForSelector('#key-box:not([hidden])');
  assert.match(await page.textContent('#key-reason'), /invalid or missing api-key/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'api-key');
  await page.getByRole('textbox', { name: /API key/ }).fill('sesame');
  await page.keyboard.press('Enter');
  await modelsLoaded(page);
  assert.ok(await page.locator('#key-box').isHidden());
  await fill(page, { prompt: 'behind a key', size: SMALL.size, num_inference_steps: SMALL.steps });
  await page.click('#submit');
  assert.match(await waitForResults(page, 1), /"behind a key"/);
});

test('--no_playground: / is not served; the API is', async (t) => {
  const off = await startCli(['--model_name', 'sd15', '--model_path', fixture('sd15'), '--no_playground']);
  t.after(() => off.stop());
  assert.equal((await fetch(`${off.url}/`)).status, 404);
  assert.equal((await fetch(`${off.url}/playground/main.js`)).status, 404);
  assert.equal((await fetch(`${off.url}/v3/images/models`)).status, 200);
  assert.doesNotMatch(off.output(), /playground: open/);
  assert.match(server.output(), /playground: open http:\/\/127\.0\.0\.1:\d+\/ in a browser/);
});
