'use strict';
// Case reshape: a model compiled for static shapes (reshape) against dynamic shapes, ours and openvino_genai.
const { oursHasReshape } = require('../lib/setup');
const { generationFigures, row, pairRatioRow } = require('../lib/figures');

async function run(session, m) {
  const rows = [];
  // Ours: LoadOptions.reshape {width, height, numImagesPerPrompt, guidanceScale}; oracle: pipe.reshape(batch, h, w, guidance).
  const reshapeOf = (side) =>
    side === 'ours'
      ? { width: m.width, height: m.height, numImagesPerPrompt: 1, guidanceScale: session.opts.guidance }
      : { batch: 1, width: m.width, height: m.height, guidance: session.opts.guidance };
  const result = { status: 'ok', rows, oursAvailable: oursHasReshape() };
  const v = (label, s, unit = 'ms') => ({ label, s, unit });
  const sides = [];
  if (result.oursAvailable) sides.push('ours');
  else result.note = 'ours: LoadOptions has no reshape option yet (checked dist/diffusion-model.d.ts); only openvino_genai is measured';
  if (session.oracleOk) sides.push('oracle');
  const figures = {};
  // Static runs: both sides loaded at once with alternating generations when they fit, else one after the other.
  let staticRuns = null;
  let staticPairs = [];
  if (sides.length === 2 && session.canPair(m)) {
    const { results, pairs } = await session.paired(
      m,
      'static reshape',
      (side) => session.baseSpec(m, { reshape: reshapeOf(side), runs: [], tasks: ['text2image'] }),
      [session.t2iRun(m)],
    );
    staticRuns = results;
    staticPairs = pairs.t2i || [];
  }
  for (const side of sides) {
    const dyn = generationFigures(await session.t2i(m, side), 't2i');
    const st = staticRuns
      ? staticRuns[side]
      : await session.worker(
          side === 'ours' ? 'engine' : 'oracle',
          session.baseSpec(m, { reshape: reshapeOf(side), runs: [session.t2iRun(m)] }),
          `${m.id} · static reshape · ${side}`,
        );
    if (!st.ok) {
      result[`${side}Error`] = st.error;
      continue;
    }
    const stat = generationFigures(st, 't2i');
    figures[side] = { static: stat, dynamic: dyn };
    const who = side === 'ours' ? 'ours' : 'openvino_genai';
    rows.push(row('reshape', `${who}: generate() wall time`, v(`${who} static`, stat.generateMs), v(`${who} dynamic`, dyn.generateMs)));
    rows.push(row('reshape', `${who}: time per step`, v(`${who} static`, stat.stepMs), v(`${who} dynamic`, dyn.stepMs)));
    rows.push(
      row(
        'reshape',
        `${who}: first generate() after load`,
        v(`${who} static`, stat.firstGenerateMs),
        v(`${who} dynamic`, dyn.firstGenerateMs),
      ),
    );
    rows.push(row('reshape', `${who}: load+compile (no cache)`, v(`${who} static`, stat.loadMs), v(`${who} dynamic`, dyn.loadMs)));
    rows.push(row('reshape', `${who}: peak RSS`, v(`${who} static`, stat.peakRssMiB, 'MiB'), v(`${who} dynamic`, dyn.peakRssMiB, 'MiB')));
    if (stat.sha256[0] !== dyn.sha256[0]) result[`${side}StaticImageDiffers`] = true;
  }
  if (figures.ours && figures.oracle)
    rows.push(
      row(
        'reshape',
        'static: generate() ours / openvino_genai',
        v('ours static', figures.ours.static.generateMs),
        v('openvino_genai static', figures.oracle.static.generateMs),
        { goal: '<= 1.00' },
      ),
    );
  if (staticPairs.length) rows.push(pairRatioRow('reshape', 'static: generate()', staticPairs));
  result.figures = figures;
  return result;
}

module.exports = {
  section: 2,
  title: 'Static reshape vs dynamic shapes',
  description: 'static shapes (reshape) vs dynamic, ours and openvino_genai',
  run,
};
