'use strict';
// Case deepcache: text-to-image with DeepCache (the model loaded with deepcache, deepcacheInterval 3) against
// openvino_genai's uncached generation of the same call, both processes kept loaded and alternating (ABBA), as the
// engine case. The image's PSNR against openvino_genai's (the uncached pixels, which ours equal) says what the speed
// costs; the judge's accuracy on the trained demo model is bench/deepcache-quality.js.
const fs = require('fs');
const path = require('path');
const { summarize } = require('../lib/stats');
const { row } = require('../lib/figures');

const INTERVAL = 3;

/** PSNR (dB) of two raw u8 files; Infinity when equal. */
function psnr(fileA, fileB) {
  const a = fs.readFileSync(fileA);
  const b = fs.readFileSync(fileB);
  if (a.length !== b.length) return NaN;
  let sum = 0;
  for (let i = 0; i < a.length; i += 1) sum += (a[i] - b[i]) ** 2;
  return sum === 0 ? Infinity : 10 * Math.log10((255 * 255) / (sum / a.length));
}

async function run(session, m) {
  if (!session.canPair(m)) return { status: 'skipped', rows: [], why: 'needs both sides loaded at once (paired mode and the oracle)' };
  const images = path.join(session.tmp, `${m.id}-deepcache`);
  const template = session.t2iRun(m, { label: `deepcache-${INTERVAL}`, deepcacheInterval: INTERVAL });
  const specOf = (side) =>
    session.baseSpec(m, { runs: [], tasks: ['text2image'], ...(side === 'ours' ? { deepcache: { branch: 0 } } : {}) });
  // Each run writes its image (every run repeats the same call: the first measured one of each side is compared).
  const { results, pairs } = await session.paired(m, `DeepCache interval ${INTERVAL}`, specOf, [{ ...template, imageFile: images }]);
  const runs = (side) => (results[side].events || []).filter((e) => e.event === 'run' && !e.warmup);
  const first = (side) => `${images}-${side}-${runs(side)[0]?.index}.raw`;
  const s = summarize((pairs[template.label] || []).map((p) => p.ours.wallMs / p.oracle.wallMs));
  const quality = runs('ours').length && runs('oracle').length ? psnr(first('ours'), first('oracle')) : NaN;
  return {
    status: results.ours.ok && results.oracle.ok ? 'ok' : 'failed',
    rows: [
      row(
        'deepcache',
        `text-to-image, DeepCache interval ${INTERVAL} (ours) vs uncached (openvino_genai)`,
        { label: 'ours DeepCache', s: summarize(runs('ours').map((e) => e.wallMs)), unit: 'ms' },
        { label: 'openvino_genai', s: summarize(runs('oracle').map((e) => e.wallMs)), unit: 'ms' },
      ),
      row(
        'deepcache',
        `DeepCache interval ${INTERVAL} ours / openvino_genai, per alternating pair (median of the pairs' ratios)`,
        { label: 'ratio', s, unit: 'x' },
        null,
        { goal: '<= 0.55', pass: s ? s.median <= 0.55 : false },
      ),
      row(
        'deepcache',
        'PSNR of the DeepCache image against the uncached one (dB)',
        { label: 'PSNR', s: summarize([quality]), unit: 'dB' },
        null,
      ),
    ],
  };
}

module.exports = {
  section: 8,
  title: 'DeepCache (UNet models)',
  description: `text-to-image with DeepCache at interval ${INTERVAL} against openvino_genai's uncached generation, and the image's PSNR`,
  run,
};
