'use strict';
// Screenshots of the web playground for the docs (docs/playground-*.png): the CLI on the embedded demo model (as
// `npm start` serves it), driven in headless Chromium (test/helpers/browser.js) through text-to-image, a job with
// its previews, inpainting, a validation error and a phone-width screen. Fixed prompts, seeds and window sizes, so a
// re-run after the demo model changes shows the new model's pictures in the same states.
//   node scripts/playground-screenshots.js [--out docs]
/* global document */ // in page.waitForFunction
const path = require('path');
const sharp = require('sharp');
const { startCli } = require('../test/helpers/server-http');
const { launchChromium } = require('../test/helpers/browser');

const ROOT = path.resolve(__dirname, '..');
const outIndex = process.argv.indexOf('--out');
const OUT = path.resolve(outIndex > 0 ? process.argv[outIndex + 1] : path.join(ROOT, 'docs'));
const DESKTOP = { width: 1100, height: 1000 };
const PHONE = { width: 390, height: 844 };
const FORM = { size: '128x128', num_inference_steps: '20' };

async function fill(page, values) {
  for (const [id, value] of Object.entries(values)) await page.fill(`#${id}`, value);
}

/** Submits the form and waits for the gallery to hold `results` images; an error the page shows ends the wait. */
async function generate(page, values, results) {
  await fill(page, values);
  await page.click('#submit');
  await page.waitForFunction(
    (n) => document.querySelectorAll('#gallery li').length >= n || !document.querySelector('#error').hidden,
    results,
    { timeout: 0 },
  );
  if (await page.locator('#error').isVisible()) throw new Error(`the page shows an error: ${await page.textContent('#error')}`);
}

async function shoot(page, name) {
  const file = path.join(OUT, `playground-${name}.png`);
  // A 256-colour palette: a third of the size of the full-colour PNG, the page's look unchanged.
  await sharp(await page.screenshot({ fullPage: true }))
    .png({ palette: true, compressionLevel: 9 })
    .toFile(file);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

async function main() {
  const { browser, skip } = await launchChromium();
  if (skip) throw new Error(skip);
  // The demo model, as `npm start` serves it (no model flags).
  const server = await startCli(['--max_concurrency', '1'], { timeoutMs: 300000 });
  try {
    const page = await browser.newPage({ viewport: DESKTOP });
    await page.goto(`${server.url}/`);
    await page.waitForSelector('#model option', { state: 'attached' });

    await generate(page, { ...FORM, prompt: 'a big red circle on a white background', rng_seed: '409' }, 1);
    await shoot(page, 'generate');

    // A longer job, caught while it runs (its previews arrive in its row).
    await fill(page, { prompt: 'a lighthouse on a cliff at dusk', rng_seed: '7', num_inference_steps: '30' });
    await page.selectOption('#partial_images', '3');
    await page.click('#submit');
    await page.waitForSelector('.job-preview:not([hidden])', { timeout: 0 });
    await shoot(page, 'progress');
    await page.waitForFunction(() => document.querySelectorAll('#gallery li').length >= 2, null, { timeout: 0 });

    // Inpainting: the first result as the input, a stroke across its middle.
    await page.click('#gallery li:last-child .result-reuse');
    await page.check('input[name="mode"][value="inpaint"]');
    // Loading the input clears the mask: paint once it is in.
    await page.waitForFunction(() => /^Input \d+x\d+/.test(document.querySelector('#input-size').textContent));
    await page.locator('#mask-canvas').scrollIntoViewIfNeeded(); // the mouse works in the viewport
    const box = await page.locator('#mask-canvas').boundingBox();
    await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.45);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.8, box.y + box.height * 0.55, { steps: 12 });
    await page.mouse.up();
    await generate(page, { size: '', prompt: 'a blue square', rng_seed: '11', num_inference_steps: FORM.num_inference_steps }, 3);
    await shoot(page, 'inpaint');

    await page.check('input[name="mode"][value="text"]');
    await fill(page, { num_inference_steps: '1000' });
    await page.click('#submit');
    await page.waitForSelector('#error:not([hidden])');
    await shoot(page, 'error');

    const phone = await browser.newPage({ viewport: PHONE });
    await phone.goto(`${server.url}/`);
    await phone.waitForSelector('#model option', { state: 'attached' });
    await generate(phone, { ...FORM, prompt: 'a big red circle on a white background', rng_seed: '409' }, 1);
    await shoot(phone, 'phone');
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
