#!/usr/bin/env node
'use strict';
// Peak memory of one generation (issue 18, memory admission):
//   node bench/memory-calibration.js [--models sd15,sdxl,...|/path/to/model] [--steps N] [--configs task:WxH:n,...] [--out file.json]
//
// For each model folder (default: the fixtures sd15, sdxl, sd3, flux-schnell) and each size, batch and task, a child
// process loads the model, runs one warm-up call at the smallest size, resets the peak RSS (/proc/self/clear_refs 5),
// runs the measured call and reports VmHWM - VmRSS before the call: the memory the call added at its peak. The
// server's estimate (lib/server/memory.ts) is printed beside each measurement, so its fit can be read off, and a
// least-squares fit of the estimate's two per-pixel coefficients (VAE and denoiser terms) to the measurements is
// printed: MEMORY_COEFFICIENTS in lib/server/memory.ts come from it.
//   node bench/memory-calibration.js --refit FILE   recomputes the estimates and the fit of a results file (no runs)
// Writes JSON to bench/results/memory-calibration.json (or --out) and a table to stdout.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');

function child() {
  const [dir, task, width, height, batch, steps] = process.argv.slice(3);
  const { DiffusionModel } = require(ROOT);
  const sharp = require('sharp');
  const status = () => fs.readFileSync('/proc/self/status', 'utf8');
  const kib = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status())[1]);
  (async () => {
    const model = await DiffusionModel.load(dir);
    const image = await sharp({ create: { width: Number(width), height: Number(height), channels: 3, background: '#808080' } })
      .png()
      .toBuffer();
    const call = (w, h, n) => {
      const options = { width: w, height: h, numImagesPerPrompt: n, numInferenceSteps: Number(steps) };
      return task === 'image2image' ? model.image2image('a cat', image, options) : model.text2image('a cat', options);
    };
    await call(64, 64, 1);
    const before = kib('VmRSS');
    fs.writeFileSync('/proc/self/clear_refs', '5');
    await call(Number(width), Number(height), Number(batch));
    const peak = kib('VmHWM');
    console.log(
      JSON.stringify({ beforeMiB: before / 1024, peakMiB: peak / 1024, addedMiB: (peak - before) / 1024, className: model.className }),
    );
    model.dispose();
  })().catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}

/** The estimate's per-pixel features of a row: VAE and denoiser element counts. */
function features(profile, row) {
  const pixels = row.width * row.height * row.batch;
  return [
    profile.vaeChannels * pixels,
    (profile.denoiserChannels * pixels * profile.guidanceBatch) / (profile.latentScale * profile.patch) ** 2,
  ];
}

/** Least squares y = a x1 + b x2 (no intercept: the measured call adds to a warmed-up model), a, b >= 0. The fixed
 * floor of the estimate is not fitted (it covers small calls). */
function fit(points) {
  const solve = (use) => {
    let s11 = 0,
      s12 = 0,
      s22 = 0,
      s1y = 0,
      s2y = 0;
    for (const { x, y } of points) {
      const x1 = use[0] ? x[0] : 0;
      const x2 = use[1] ? x[1] : 0;
      s11 += x1 * x1;
      s12 += x1 * x2;
      s22 += x2 * x2;
      s1y += x1 * y;
      s2y += x2 * y;
    }
    if (use[0] && use[1]) {
      const det = s11 * s22 - s12 * s12;
      return [(s1y * s22 - s2y * s12) / det, (s2y * s11 - s1y * s12) / det];
    }
    return use[0] ? [s1y / s11, 0] : [0, s2y / s22];
  };
  let [a, b] = solve([true, true]);
  if (a < 0) [a, b] = solve([false, true]);
  if (b < 0) [a, b] = solve([true, false]);
  return { vaeBytesPerElement: a, denoiserBytesPerElement: b };
}

function report(rows, memory) {
  const points = [];
  for (const row of rows.filter((r) => !r.error)) {
    const profile = memory.modelMemoryProfile(row.dir);
    // A call at the warm-up's size adds nothing (its buffers are already there): not a point of the fit.
    if (row.addedMiB > 0) points.push({ x: features(profile, row), y: row.addedMiB * 2 ** 20, row });
    row.estimateMiB = Math.round(
      memory.estimateCallBytes(profile, { task: row.task, width: row.width, height: row.height, numImagesPerPrompt: row.batch }) / 2 ** 20,
    );
  }
  const f = fit(points);
  const ratios = points.map((p) => p.row.estimateMiB / p.row.addedMiB);
  return {
    fit: f,
    coefficients: memory.MEMORY_COEFFICIENTS,
    estimateOverMeasured: {
      min: Math.min(...ratios),
      max: Math.max(...ratios),
      under: ratios.filter((r) => r < 1).length,
      of: ratios.length,
    },
  };
}

function main() {
  const argv = process.argv.slice(2);
  const get = (name, fallback) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : fallback;
  };
  const models = get('models', 'sd15,sdxl,sd3,flux-schnell').split(',');
  const steps = get('steps', '2');
  const out = get('out', path.join(__dirname, 'results', 'memory-calibration.json'));
  const memory = require(path.join(ROOT, 'dist', 'server', 'memory'));
  const { estimateCallBytes, modelMemoryProfile } = memory;
  const refit = get('refit', undefined);
  if (refit) {
    const data = JSON.parse(fs.readFileSync(refit, 'utf8'));
    // A fixture's name, or a model folder's path (relative to the checkout).
    for (const row of data.rows)
      row.dir ??= row.model.includes('/') ? path.resolve(ROOT, row.model) : path.join(ROOT, 'test', 'fixtures', row.model);
    Object.assign(data, report(data.rows, memory), { refitted: new Date().toISOString() });
    for (const row of data.rows) delete row.dir;
    fs.writeFileSync(out, `${JSON.stringify(data, null, 2)}\n`);
    console.log(JSON.stringify({ fit: data.fit, coefficients: data.coefficients, estimateOverMeasured: data.estimateOverMeasured }));
    for (const row of data.rows)
      console.log(
        `${row.model} ${row.task} ${row.width}x${row.height} n=${row.batch}: added ${row.addedMiB} MiB, estimate ${row.estimateMiB} MiB`,
      );
    return;
  }
  // Sizes stay small: the fixtures' VAEs scale by 2 to 4, so 256x256 is already a 128x128 latent. --configs
  // task:WxH:n,... measures others (e.g. a full-size model at 512x512).
  const configs = get('configs', undefined)
    ?.split(',')
    .map((spec) => {
      const m = /^(text2image|image2image):(\d+)x(\d+):(\d+)$/.exec(spec);
      if (!m) throw new Error(`--configs: '${spec}' is not task:WxH:n (task text2image or image2image)`);
      return [m[1], Number(m[2]), Number(m[3]), Number(m[4])];
    }) ?? [
    ['text2image', 64, 64, 1],
    ['text2image', 128, 128, 1],
    ['text2image', 192, 192, 1],
    ['text2image', 256, 256, 1],
    ['text2image', 128, 128, 2],
    ['text2image', 128, 128, 4],
    ['text2image', 256, 256, 2],
    ['image2image', 256, 256, 1],
  ];
  const rows = [];
  for (const name of models) {
    const dir = name.includes('/') ? path.resolve(name) : path.join(ROOT, 'test', 'fixtures', name);
    const profile = modelMemoryProfile(dir);
    for (const [task, width, height, batch] of configs) {
      const r = spawnSync(process.execPath, [__filename, '--child', dir, task, String(width), String(height), String(batch), steps], {
        encoding: 'utf8',
        env: { ...process.env, OV_DIFFUSION_MALLOC_MMAP_THRESHOLD: process.env.OV_DIFFUSION_MALLOC_MMAP_THRESHOLD ?? '' },
      });
      if (r.status !== 0) {
        rows.push({
          model: name.includes('/') ? path.relative(ROOT, path.resolve(name)) : name,
          task,
          width,
          height,
          batch,
          error: r.stderr.trim().split('\n').pop(),
        });
        console.log(`${name} ${task} ${width}x${height} n=${batch}: ${r.stderr.trim().split('\n').pop()}`);
        continue;
      }
      const m = JSON.parse(r.stdout.trim().split('\n').pop());
      const estimateMiB = estimateCallBytes(profile, { task, width, height, numImagesPerPrompt: batch, numInferenceSteps: 2 }) / 2 ** 20;
      const row = {
        model: name.includes('/') ? path.relative(ROOT, path.resolve(name)) : name,
        dir,
        className: m.className,
        task,
        width,
        height,
        batch,
        addedMiB: Math.round(m.addedMiB),
        estimateMiB: Math.round(estimateMiB),
      };
      rows.push(row);
      console.log(`${name} ${task} ${width}x${height} n=${batch}: added ${row.addedMiB} MiB, estimate ${row.estimateMiB} MiB`);
    }
  }
  const summary = report(rows, memory);
  console.log(JSON.stringify(summary));
  for (const row of rows) delete row.dir;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), command: `node bench/memory-calibration.js ${argv.join(' ')}`.trim(), steps: Number(steps), ...summary, rows }, null, 2)}\n`,
  );
  console.log(`written: ${path.relative(process.cwd(), out)}`);
}

if (process.argv[2] === '--child') child();
else main();
