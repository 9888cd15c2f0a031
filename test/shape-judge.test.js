'use strict';
// The shape judge (test/helpers/shape-judge.js) on images drawn by the demo model's dataset drawer
// (scripts/demo-model/shapes.py; test/fixtures/shapes/ holds 60 of them with what was drawn). The judge
// is the ground truth for the demo generator's accuracy, so on drawn images it must be right.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');
const { judge, score, VOCAB } = require('./helpers/shape-judge');
const { fixture } = require('./helpers/paths');

const DIR = fixture('shapes');
const META = JSON.parse(fs.readFileSync(path.join(DIR, 'captions.json'), 'utf8'));

async function load(file) {
  const { data, info } = await sharp(path.join(DIR, file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** A copy degraded like a generated image could be: 3x3 box blur and deterministic noise of +-amp. */
function degrade(img, amp) {
  const { data, width, height, channels } = img;
  const out = Buffer.alloc(data.length);
  let state = 12345;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      for (let c = 0; c < channels; c += 1) {
        let s = 0;
        let k = 0;
        for (let dy = -1; dy <= 1; dy += 1) {
          for (let dx = -1; dx <= 1; dx += 1) {
            const xx = Math.min(width - 1, Math.max(0, x + dx));
            const yy = Math.min(height - 1, Math.max(0, y + dy));
            s += data[(yy * width + xx) * channels + c];
            k += 1;
          }
        }
        state = (state * 1103515245 + 12345) >>> 0;
        const noise = (((state >>> 8) / 0x1000000) * 2 - 1) * amp;
        out[(y * width + x) * channels + c] = Math.max(0, Math.min(255, Math.round(s / k + noise)));
      }
    }
  }
  return { ...img, data: out };
}

async function accuracy(transform = (img) => img) {
  const tally = { objects: 0, colour: 0, shape: 0, position: 0, size: 0, images: 0, background: 0, exact: 0 };
  const misses = [];
  for (const m of META) {
    const verdict = judge(transform(await load(m.file)));
    const s = score(verdict, m);
    tally.images += 1;
    if (s.background) tally.background += 1;
    if (s.extraBlobs === 0 && s.objects.every((o) => o.colour && o.shape && o.position && o.size)) tally.exact += 1;
    for (const o of s.objects) {
      tally.objects += 1;
      for (const k of ['colour', 'shape', 'position', 'size']) if (o[k]) tally[k] += 1;
      if (!(o.colour && o.shape && o.position && o.size))
        misses.push(`${m.file}: ${JSON.stringify(o.expected)} -> ${JSON.stringify(o.found)}`);
    }
  }
  const rate = (k, of) => tally[k] / tally[of];
  return {
    tally,
    misses,
    colour: rate('colour', 'objects'),
    shape: rate('shape', 'objects'),
    position: rate('position', 'objects'),
    size: rate('size', 'objects'),
    background: rate('background', 'images'),
    exact: rate('exact', 'images'),
  };
}

test('the test images cover the vocabulary', () => {
  assert.equal(META.length, 60);
  const objects = META.flatMap((m) => m.objects);
  for (const s of VOCAB.shapes)
    assert.ok(
      objects.some((o) => o.shape === s),
      `no ${s}`,
    );
  for (const c of Object.keys(VOCAB.colours))
    assert.ok(
      objects.some((o) => o.colour === c),
      `no ${c}`,
    );
  for (const p of Object.keys(VOCAB.positions))
    assert.ok(
      objects.some((o) => o.position === p),
      `no ${p}`,
    );
  assert.ok(META.some((m) => m.objects.length === 2) && META.some((m) => m.objects.length === 1));
  assert.ok(META.some((m) => m.background !== VOCAB.plain_background));
});

test('the judge reads every drawn image exactly (colour, shape, position, size, background)', async (t) => {
  const acc = await accuracy();
  t.diagnostic(`drawn images: ${JSON.stringify({ ...acc, misses: undefined, tally: acc.tally })}`);
  assert.deepEqual(acc.misses, []);
  assert.equal(acc.exact, 1);
  assert.equal(acc.background, 1);
});

test('the judge survives blur and noise (a generated image is not as clean as a drawing)', async (t) => {
  const acc = await accuracy((img) => degrade(img, 24));
  t.diagnostic(`blurred + noise +-24: ${JSON.stringify({ ...acc, misses: acc.misses.slice(0, 5) })}`);
  assert.ok(acc.colour >= 0.98 && acc.position >= 0.98 && acc.background >= 0.98, JSON.stringify(acc));
  assert.ok(acc.shape >= 0.9, JSON.stringify(acc));
});

test('the judge reports no blob on a blank image and one centred blob on a centred square', () => {
  const [w, h] = [96, 96];
  const blank = { data: Buffer.alloc(w * h * 3, 200), width: w, height: h, channels: 3 };
  assert.deepEqual(judge(blank).blobs, []);
  const sq = Buffer.alloc(w * h * 3, 255);
  for (let y = 30; y < 66; y += 1) for (let x = 30; x < 66; x += 1) sq.set(VOCAB.colours.blue, (y * w + x) * 3);
  const v = judge({ data: sq, width: w, height: h, channels: 3 });
  assert.equal(v.background.name, 'white');
  assert.equal(v.blobs.length, 1);
  assert.deepEqual([v.blobs[0].colour, v.blobs[0].shape, v.blobs[0].position, v.blobs[0].size], ['blue', 'square', 'in the centre', 'big']);
});
