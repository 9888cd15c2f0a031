'use strict';
// Deterministic test images and masks, written as PNG files the oracle can read too.
const fs = require('fs');
const os = require('os');
const path = require('path');
const sharp = require('sharp');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovd-images-'));

async function writePng(name, data, width, height, channels) {
  const file = path.join(dir, `${name}.png`);
  await sharp(Buffer.from(data), { raw: { width, height, channels } }).png().toFile(file);
  return file;
}

/** A colourful gradient image. */
function gradient(width, height) {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * 3;
      data[i] = (x * 3) & 255;
      data[i + 1] = (y * 5) & 255;
      data[i + 2] = ((x + y) * 7) & 255;
    }
  }
  return data;
}

/** A mask with value(x, y) in each of `channels` channels (alpha, if any, is a ramp). */
function mask(width, height, channels, value) {
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * channels;
      const v = value(x, y);
      for (let c = 0; c < Math.min(channels, 3); c += 1) data[i + c] = v;
      if (channels === 4) data[i + 3] = (x * 4) & 255;
    }
  }
  return data;
}

/** Files for the edit cases: image 80x72, a binary box mask, a soft RGBA mask, an outpainting canvas. */
async function editInputs() {
  const [w, h] = [80, 72];
  const image = await writePng('image', gradient(w, h), w, h, 3);
  const boxMask = await writePng(
    'box-mask',
    mask(w, h, 3, (x, y) => (x > 20 && x < 60 && y > 16 && y < 50 ? 255 : 0)),
    w,
    h,
    3,
  );
  const softMask = await writePng(
    'soft-mask',
    mask(w, h, 4, (x, y) => Math.min(255, Math.abs(x - 40) * 6 + Math.abs(y - 36) * 2)),
    w,
    h,
    4,
  );
  // Outpainting: the 48x40 image in the middle of an 80x72 black canvas; the mask is white outside it.
  const inner = await sharp(Buffer.from(gradient(48, 40)), { raw: { width: 48, height: 40, channels: 3 } })
    .extend({ top: 16, bottom: 16, left: 16, right: 16, background: '#000000' })
    .raw()
    .toBuffer();
  const canvas = await writePng('outpaint-canvas', inner, w, h, 3);
  const border = await writePng(
    'outpaint-mask',
    mask(w, h, 3, (x, y) => (x >= 16 && x < 64 && y >= 16 && y < 56 ? 0 : 255)),
    w,
    h,
    3,
  );
  return { image, boxMask, softMask, canvas, border, width: w, height: h };
}

module.exports = { writePng, gradient, mask, editInputs };
