#!/usr/bin/env node
'use strict';
// How many steps each solver needs on the trained demo model to reach the shape judge's accuracy that Euler reaches at
// 30 steps (issue 21, part 2). Every run renders the same held-out prompts with the same seeds
// (scripts/demo-model/evaluate.js) and scores them with the shape judge (test/helpers/shape-judge.js); accuracy is the
// share of one-object prompts whose judged features (--criteria, default colour, shape and position) are all right.
// The shipped demo model puts objects at chance places (models/demo/STATUS.md), so with it use
// --criteria colour,shape: a criterion at chance only adds noise to the comparison.
//
//   node bench/solver-steps.js [modelDir=models/demo] [--limit 40] [--size 128] [--guidance G (default: the model's, see evaluate.js)]
//        [--criteria colour,shape,position] [--ladder 4,6,8,10,12,15,20,25,30] [--solvers DPMPP_2M,...]
//        [--out bench/results/solver-steps.json]
//
// Prints one line per (solver, steps) and a markdown table of the fewest steps reaching Euler's 30-step accuracy.
// The placeholder model (random weights) draws noise; run this on the trained model only.
const fs = require('fs');
const path = require('path');
const { DiffusionModel } = require('..');
const { evaluate } = require('../scripts/demo-model/evaluate');
const { parseScriptOptions } = require('../scripts/lib/script-options');

const BASELINE = { scheduler: 'EULER_DISCRETE', steps: 30 };
const SOLVERS = [
  'EULER_DISCRETE',
  'DPMPP_2M',
  'DPMPP_2M_KARRAS',
  'DPMPP_2M_EXPONENTIAL',
  'DPMPP_2M_SDE',
  'DPMPP_2M_SDE_KARRAS',
  'UNIPC',
  'HEUN',
];

function options(argv) {
  return parseScriptOptions(argv, {
    model: 'models/demo',
    limit: 40,
    size: 128,
    guidance: undefined, // the model's own (scripts/demo-model/evaluate.js modelGuidance)
    ladder: [4, 6, 8, 10, 12, 15, 20, 25, 30],
    solvers: SOLVERS,
    criteria: ['colour', 'shape', 'position'],
    out: null,
  });
}

/** Share of one-object prompts with every criterion right. */
const accuracy = (rows, criteria) => {
  const one = rows.filter((r) => r.expected.length === 1);
  return one.filter((r) => criteria.every((c) => r.single[c])).length / one.length;
};

async function main() {
  const o = options(process.argv.slice(2));
  const model = await DiffusionModel.load(path.resolve(o.model));
  const run = async (scheduler, steps) => {
    const { rows, summary } = await evaluate(model, { ...o, scheduler, steps });
    const result = {
      scheduler,
      steps,
      accuracy: accuracy(rows, o.criteria),
      seconds: summary.seconds,
      single: summary.single,
      guidance: summary.guidance,
    };
    console.log(
      `${scheduler.padEnd(24)} ${String(steps).padStart(3)} steps  accuracy ${(result.accuracy * 100).toFixed(1)} %  (${summary.seconds} s)`,
    );
    return result;
  };
  const baseline = await run(BASELINE.scheduler, BASELINE.steps);
  const results = [baseline];
  const table = [];
  for (const solver of o.solvers) {
    let reached = null;
    for (const steps of o.ladder) {
      const r = solver === BASELINE.scheduler && steps === BASELINE.steps ? baseline : await run(solver, steps);
      if (r !== baseline) results.push(r);
      if (r.accuracy >= baseline.accuracy) {
        reached = r;
        break;
      }
    }
    table.push({ solver, steps: reached ? reached.steps : null, accuracy: reached ? reached.accuracy : null });
  }
  model.dispose();
  console.log(
    `\nEuler at ${BASELINE.steps} steps: ${(baseline.accuracy * 100).toFixed(1)} % (${o.criteria.join(' + ')} right; ${o.limit} one-object prompts, ${o.size}x${o.size}, guidance ${baseline.guidance})\n`,
  );
  console.log('| solver | steps to reach it | accuracy there | UNet calls |');
  console.log('|---|---|---|---|');
  for (const t of table)
    console.log(
      `| ${t.solver} | ${t.steps ?? `not within ${o.ladder.at(-1)}`} | ${t.accuracy === null ? '-' : `${(t.accuracy * 100).toFixed(1)} %`} | ${
        t.steps === null ? '-' : t.solver === 'HEUN' ? 2 * t.steps - 1 : t.steps
      } |`,
    );
  if (o.out) fs.writeFileSync(o.out, JSON.stringify({ options: o, baseline, table, results }, null, 1) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
