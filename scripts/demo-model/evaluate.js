#!/usr/bin/env node
'use strict';
// Renders the held-out prompts (scripts/demo-model/eval-prompts.json, never drawn into the training set)
// through this library and scores each image with the shape judge (test/helpers/shape-judge.js).
//
//   node scripts/demo-model/evaluate.js [modelDir=models/demo] [--limit N] [--steps 20] [--guidance G]
//        [--size 128] [--scheduler PNDM] [--guidance-rescale 0] [--out report.json] [--sheet sheet.png] [--cols 10]
//
// Metrics (the targets): single-object colour / shape / position accuracy of the dominant blob,
// and for two-object prompts the share of images in which both asked colours are present.
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');
const { DiffusionModel } = require('../..');
const { judge, score } = require('../../test/helpers/shape-judge');
const { parseScriptOptions } = require('../lib/script-options');

function parseArgs(argv) {
  return parseScriptOptions(argv, {
    model: 'models/demo',
    limit: Infinity,
    steps: 20,
    guidance: undefined, // the model's own (modelGuidance)
    size: 128,
    scheduler: undefined,
    guidanceRescale: 0,
    out: null,
    sheet: null,
    cols: 10,
  });
}

/** The eval prompts `evaluate` uses with `limit`: the first `limit` one-object prompts and half as many two-object ones. */
function choosePrompts(limit) {
  const prompts = JSON.parse(fs.readFileSync(path.join(__dirname, 'eval-prompts.json'), 'utf8'));
  const singles = prompts.filter((p) => p.objects.length === 1).slice(0, limit);
  const doubles = prompts.filter((p) => p.objects.length === 2).slice(0, Math.ceil(limit / 2));
  return [...singles, ...doubles];
}

/**
 * The guidance a demo model is meant to be run at: the `generation` entry of the vocabulary.json shipped beside it
 * (what `npm start` serves it with), else the library's default for the model (undefined).
 */
function modelGuidance(dir) {
  const file = path.join(dir, 'vocabulary.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).generation?.guidance_scale : undefined;
}

/**
 * Renders the chosen prompts on a loaded model (seeds 1000 + k) and scores them; also returns the images when
 * `keepImages`. Without args.guidance, at the model's own guidance (modelGuidance).
 */
async function evaluate(model, args, keepImages = false) {
  const guidanceScale = args.guidance !== undefined ? Number(args.guidance) : modelGuidance(args.model);
  const chosen = choosePrompts(args.limit);
  const rows = [];
  const tiles = [];
  const t0 = Date.now();
  let denoiserMs = 0; // the engine's own per-step timings: the judge's time does not count
  for (let k = 0; k < chosen.length; k += 1) {
    const p = chosen[k];
    const r = await model.text2image(p.prompt, {
      width: args.size,
      height: args.size,
      numInferenceSteps: args.steps,
      guidanceScale,
      guidanceRescale: args.guidanceRescale,
      seed: 1000 + k,
      ...(args.scheduler ? { scheduler: args.scheduler } : {}),
      ...(args.deepcacheInterval ? { deepcacheInterval: args.deepcacheInterval } : {}),
    });
    denoiserMs += r.metrics.denoiserMs.reduce((sum, ms) => sum + ms, 0);
    const img = r.images[0];
    const verdict = judge({ data: img.data, width: img.width, height: img.height, channels: img.channels });
    const s = score(verdict, p);
    rows.push({
      prompt: p.prompt,
      expected: p.objects,
      background: p.background,
      seed: 1000 + k,
      found: verdict.blobs.map((b) => ({ colour: b.colour, shape: b.shape, position: b.position, size: b.size })),
      foundBackground: verdict.background.name,
      single: s.single,
      allColoursPresent: s.allColoursPresent,
    });
    if (keepImages) tiles.push({ data: img.data, width: img.width, height: img.height, channels: img.channels });
  }
  const ms = Date.now() - t0;
  const frac = (xs, f) => (xs.length ? xs.filter(f).length / xs.length : null);
  const one = rows.filter((r) => r.expected.length === 1);
  const two = rows.filter((r) => r.expected.length === 2);
  const summary = {
    model: args.model,
    steps: args.steps,
    guidance: guidanceScale ?? 'library default',
    guidanceRescale: args.guidanceRescale,
    size: args.size,
    scheduler: args.scheduler ?? 'model default',
    prompts: rows.length,
    seconds: Math.round(ms / 100) / 10,
    denoiserMs: Math.round(denoiserMs),
    single: {
      n: one.length,
      colour: frac(one, (r) => r.single.colour),
      shape: frac(one, (r) => r.single.shape),
      position: frac(one, (r) => r.single.position),
      size: frac(one, (r) => r.single.size),
      background: frac(one, (r) => r.foundBackground === r.background),
    },
    two: {
      n: two.length,
      bothColours: frac(two, (r) => r.allColoursPresent),
      background: frac(two, (r) => r.foundBackground === r.background),
    },
  };
  return { summary, rows, tiles };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const model = await DiffusionModel.load(path.resolve(args.model));
  const { summary, rows, tiles } = await evaluate(model, args, Boolean(args.sheet));
  console.log(JSON.stringify(summary, null, 1));
  if (args.out) fs.writeFileSync(args.out, JSON.stringify({ summary, rows }, null, 1) + '\n');
  if (args.sheet && tiles.length) {
    const cols = args.cols;
    const s = args.size;
    const sheet = Buffer.alloc(cols * s * Math.ceil(tiles.length / cols) * s * 3, 255);
    const W = cols * s;
    tiles.forEach((t, k) => {
      const ox = (k % cols) * s;
      const oy = Math.floor(k / cols) * s;
      for (let y = 0; y < t.height; y += 1) {
        for (let x = 0; x < t.width; x += 1) {
          for (let c = 0; c < 3; c += 1) sheet[((oy + y) * W + ox + x) * 3 + c] = t.data[(y * t.width + x) * t.channels + c];
        }
      }
    });
    await sharp(sheet, { raw: { width: W, height: sheet.length / 3 / W, channels: 3 } })
      .png()
      .toFile(args.sheet);
  }
}

module.exports = { modelGuidance, evaluate, choosePrompts };

if (require.main === module)
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
