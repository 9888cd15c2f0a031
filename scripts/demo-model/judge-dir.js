#!/usr/bin/env node
'use strict';
// Scores a directory of PNGs (written by diagnose.py: DIR/prompts.json + DIR/NNN.png) with the shape judge,
// with the same metrics as evaluate.js, so images rendered outside this library can be compared with it.
//
//   node scripts/demo-model/judge-dir.js DIR
const fs = require('fs');
const path = require('path');
const sharp = require('sharp');
const { judge, score } = require('../../test/helpers/shape-judge');

async function main() {
  const dir = process.argv[2];
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'prompts.json'), 'utf8'));
  const rows = [];
  for (const p of meta) {
    const { data, info } = await sharp(path.join(dir, p.file)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const verdict = judge({ data, width: info.width, height: info.height, channels: info.channels });
    const s = score(verdict, p);
    rows.push({ n: p.objects.length, single: s.single, all: s.allColoursPresent, bg: verdict.background.name === p.background });
  }
  const frac = (xs, f) => (xs.length ? Math.round((1000 * xs.filter(f).length) / xs.length) / 1000 : null);
  const one = rows.filter((r) => r.n === 1);
  const two = rows.filter((r) => r.n === 2);
  console.log(
    JSON.stringify({
      dir,
      single: {
        n: one.length,
        colour: frac(one, (r) => r.single.colour),
        shape: frac(one, (r) => r.single.shape),
        position: frac(one, (r) => r.single.position),
        size: frac(one, (r) => r.single.size),
        background: frac(one, (r) => r.bg),
      },
      two: { n: two.length, bothColours: frac(two, (r) => r.all), background: frac(two, (r) => r.bg) },
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
