'use strict';
// Case previews: what partial images (3 previews in a text-to-image generation) add to the generation's time, with
// full previews (a VAE decode each) and fast ones (the model's fitted latent-to-RGB map). One process, the model
// loaded once, the three kinds of generation interleaved round by round so that a change of machine load affects
// them alike; each ratio is the median of the per-round ratios against the generation without previews.
const { summarize } = require('../lib/stats');
const { eventsOf, row } = require('../lib/figures');

const PREVIEWS = 3;
const KINDS = [
  { label: 'none', previews: 0 },
  { label: 'full', previews: PREVIEWS, previewMode: 'full' },
  { label: 'fast', previews: PREVIEWS, previewMode: 'fast' },
];

async function run(session, m) {
  const o = session.opts;
  // Round 0 is the warm-up (it also fits the fast preview map, once per model); rounds 1..repeat are measured.
  const runs = [];
  for (let round = 0; round <= o.repeat; round += 1)
    for (const kind of KINDS)
      runs.push(session.t2iRun(m, { ...kind, repeat: round === 0 ? 0 : 1, warmup: round === 0 ? 1 : 0, indexBase: round }));
  const res = await session.worker('engine', session.baseSpec(m, { runs }), `${m.id} · previews`);
  const measured = eventsOf(res, 'run').filter((e) => !e.warmup);
  const wall = (label) => measured.filter((e) => e.label === label).map((e) => e.wallMs);
  const none = wall('none');
  const perRound = (label) => wall(label).map((ms, i) => ms / none[i]);
  const v = (label, s, unit = 'ms') => ({ label, s, unit });
  // Within each generation: the engine's time outside its steps, encoders and final decode is where the previews are
  // made (in the step callback). Against the same figure without previews, it gives what previews add to that very
  // generation, which a change of machine load between generations does not disturb.
  const outside = (e) =>
    e.metrics.totalMs -
    e.metrics.stepMs.reduce((a, b) => a + b, 0) -
    e.metrics.textEncodeMs -
    e.metrics.vaeEncodeMs -
    e.metrics.vaeDecodeMs;
  const baseline = summarize(measured.filter((e) => e.label === 'none').map(outside))?.median ?? 0;
  const inRun = (label) =>
    summarize(measured.filter((e) => e.label === label).map((e) => e.metrics.totalMs / (e.metrics.totalMs - (outside(e) - baseline))));
  const previewMs = (label) => summarize(measured.filter((e) => e.label === label).map((e) => (outside(e) - baseline) / PREVIEWS));
  const decodeMs = summarize(measured.map((e) => e.metrics.vaeDecodeMs));
  const rows = [
    row(
      'previews',
      `text-to-image with ${PREVIEWS} full previews (VAE decodes)`,
      v('full previews', summarize(wall('full'))),
      v('no previews', summarize(none)),
    ),
    row(
      'previews',
      `text-to-image with ${PREVIEWS} fast previews (fitted map)`,
      v('fast previews', summarize(wall('fast'))),
      v('no previews', summarize(none)),
      {
        goal: '<= 1.02',
      },
    ),
    row('previews', `full previews / none, per round (median of the rounds' ratios)`, v('ratio', summarize(perRound('full')), 'x'), null),
    row('previews', `fast previews / none, per round (median of the rounds' ratios)`, v('ratio', summarize(perRound('fast')), 'x'), null, {
      goal: '<= 1.02',
      pass: summarize(perRound('fast'))?.median <= 1.02,
    }),
    row('previews', 'one full preview (VAE decode)', v('full preview', previewMs('full')), v('final VAE decode', decodeMs)),
    row('previews', 'one fast preview (fitted map)', v('fast preview', previewMs('fast')), v('final VAE decode', decodeMs)),
    row('previews', 'full previews: generation with / without them, within each generation', v('ratio', inRun('full'), 'x'), null),
    row('previews', 'fast previews: generation with / without them, within each generation', v('ratio', inRun('fast'), 'x'), null, {
      goal: '<= 1.02',
      pass: inRun('fast')?.median <= 1.02,
    }),
  ];
  const fitted = eventsOf(res, 'run').find((e) => e.label === 'fast' && e.warmup);
  return { status: res.ok ? 'ok' : 'failed', rows, firstFastGenerateMs: fitted && fitted.wallMs };
}

module.exports = {
  section: 7,
  title: 'Previews (partial_images)',
  description: `what ${PREVIEWS} previews add to a text-to-image generation: full (VAE decode each) vs fast (fitted latent-to-RGB map)`,
  run,
};
