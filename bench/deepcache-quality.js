#!/usr/bin/env node
'use strict';
// What DeepCache costs in quality on the trained demo model (issue 21, part 1): the held-out prompts
// (scripts/demo-model/evaluate.js, same seeds) rendered with the model loaded with DeepCache at each interval, scored
// by the shape judge, and each image compared with the uncached one (interval 1: openvino_genai's pixels) by PSNR.
// Speed is the denoiser time against interval 1 in the same process; the speed against openvino_genai at full size
// is bench/run.js --cases deepcache.
//
//   node bench/deepcache-quality.js [modelDir=models/demo] [--limit 60] [--size 128] [--steps 20] [--guidance G (default: the model's, see evaluate.js)]
//        [--intervals 1,2,3,5] [--branch 0] [--out FILE.json]
const fs = require('fs');
const path = require('path');
const { DiffusionModel } = require('..');
const { evaluate } = require('../scripts/demo-model/evaluate');
const { parseScriptOptions } = require('../scripts/lib/script-options');

function options(argv) {
  const o = parseScriptOptions(argv, {
    model: 'models/demo',
    limit: 60,
    size: 128,
    steps: 20,
    guidance: undefined, // the model's own (scripts/demo-model/evaluate.js modelGuidance)
    intervals: [1, 2, 3, 5],
    branch: 0,
    out: null,
  });
  if (o.intervals[0] !== 1) o.intervals.unshift(1);
  return o;
}

/** PSNR (dB) of two u8 images of the same size; Infinity when equal. */
function psnr(a, b) {
  let sum = 0;
  for (let i = 0; i < a.data.length; i += 1) sum += (a.data[i] - b.data[i]) ** 2;
  const mse = sum / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const pct = (v) => `${(v * 100).toFixed(1)} %`;

async function main() {
  const o = options(process.argv.slice(2));
  const model = await DiffusionModel.load(path.resolve(o.model), { deepcache: { branch: o.branch } });
  const results = [];
  for (const interval of o.intervals) {
    const { rows, summary, tiles } = await evaluate(model, { ...o, deepcacheInterval: interval }, true);
    const one = rows.filter((r) => r.expected.length === 1);
    const all = (r) => r.single.colour && r.single.shape && r.single.position;
    results.push({ interval, summary, tiles, denoiserMs: summary.denoiserMs, accuracy: one.filter(all).length / one.length });
  }
  model.dispose();
  const base = results[0];
  console.log(
    `\n${o.model}: ${o.limit} held-out prompts, ${o.size}x${o.size}, ${o.steps} steps, guidance ${base.summary.guidance}, branch ${o.branch}\n`,
  );
  console.log(
    '| interval | UNet time vs interval 1 | colour | shape | position | two-object colours | all three right | median PSNR vs uncached |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  const table = results.map((r) => {
    const p = r.tiles.map((t, i) => psnr(t, base.tiles[i]));
    const row = {
      interval: r.interval,
      denoiserRatio: r.denoiserMs / base.denoiserMs,
      single: r.summary.single,
      bothColours: r.summary.two.bothColours,
      accuracy: r.accuracy,
      medianPsnr: median(p),
    };
    console.log(
      `| ${r.interval} | ${row.denoiserRatio.toFixed(3)} | ${pct(row.single.colour)} | ${pct(row.single.shape)} | ${pct(row.single.position)} | ${
        row.bothColours === null ? '-' : pct(row.bothColours)
      } | ${pct(row.accuracy)} | ${Number.isFinite(row.medianPsnr) ? `${row.medianPsnr.toFixed(1)} dB` : 'identical'} |`,
    );
    return row;
  });
  if (o.out) fs.writeFileSync(o.out, JSON.stringify({ options: o, table }, null, 1) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
