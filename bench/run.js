#!/usr/bin/env node
'use strict';
// ov-diffusion benchmarks: our engine, library and server against openvino_genai (Python) on the same models,
// in one run. See docs/benchmarks.md. `npm run bench -- --help` lists the options.
//
// Every measurement runs in its own child process (bench/workers/*), so that peak memory (VmHWM) belongs to it
// alone; each figure is repeated (--repeat) and reported as median [min-max], and as a ratio against a baseline
// measured in the same run.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { parseArgs } = require('util');
const { machineInfo, sampleBusy } = require('./lib/machine');
const { ROOT } = require('./lib/workers');
const { writeReport } = require('./lib/report');
const { T0, log } = require('./lib/log');
const { ensureBuilt, ensureOracle } = require('./lib/setup');
const { RANDOM_MODEL } = require('./lib/models');
const { Session } = require('./lib/session');

// The cases, one file each (bench/cases/NAME.js: { section, title, description, run(session, model) }), in the order
// they run: the server cases last, since the server they share stays loaded until the model is done. --help, --list
// and the default --cases follow this order; the report orders its sections by `section`.
const CASES = Object.fromEntries(
  ['engine', 'reshape', 'edit', 'previews', 'deepcache', 'concurrency', 'server', 'eventloop'].map((name) => [
    name,
    require(`./cases/${name}`),
  ]),
);
const DEFAULT_PROMPT = 'a photo of an astronaut riding a horse on mars';

const HELP = `Usage: npm run bench -- [options]      (or: node bench/run.js [options])

Options:
  --cases LIST        Comma-separated cases (default: all): ${Object.keys(CASES).join(', ')}
  --model LIST        Comma-separated models (default: ${RANDOM_MODEL},fixture:sd15):
                        ${RANDOM_MODEL}   full-size SD 1.5 INT8 with random weights (.cache/bench-models/; built
                                           by scripts/bench-models/make-sd15-random-int8.sh when missing)
                        sdxl-int8-random   full-size SDXL base 1.0 INT8 with random weights (the same, built by
                                           scripts/bench-models/make-sdxl-random-int8.sh; 1024x1024 by default)
                        zimage-int8-random full-size Z-Image-Turbo INT8 with random weights (the same, built by
                                           scripts/bench-models/make-zimage-random-int8.sh; 10.2 GB, needs swap to
                                           export; run it with --no-paired --guidance 0 --size 512x512)
                        fixture:NAME       a tiny test model, test/fixtures/NAME
                        PATH               any model folder in OpenVINO (optimum-intel) layout, e.g. a download of
                                           OpenVINO/stable-diffusion-v1-5-int8-ov
  --quick             Smoke test on the tiny fixture only (fixture:sd15, repeat 2, ~1-2 min); writes quick.*
  --steps N           Denoising steps (default 20)
  --size WxH          Image size (default: the model's own default size, 512x512 for SD 1.5)
  --guidance G        Guidance scale (default 7.5)
  --seed N            Seed (default 42)
  --prompt TEXT       Prompt (default "${DEFAULT_PROMPT}")
  --repeat N          Measured repetitions of each figure (default 3)
  --no-paired         Text-to-image: do not keep both sides loaded with alternating generations (ABBA); run
                      --rounds processes per side instead (also the fallback when memory is short)
  --rounds N          With --no-paired: processes per side, alternating ours/oracle (default 2; 1 with --quick)
  --warmup N          Unmeasured generations after each load (default 1; reported as "first generate")
  --threads N         INFERENCE_NUM_THREADS for both sides (default: all logical CPUs, ${os.availableParallelism()})
  --properties JSON   More OpenVINO properties, given identically to both sides, e.g. '{"PERFORMANCE_HINT":"LATENCY"}'
  --concurrency LIST  Concurrency levels (default 1,2,4,2s); Ns = N at once with NUM_STREAMS=N (OpenVINO runs the
                      requests in parallel streams instead of one after another on one stream)
  --concurrency-repeat N  Measured batches per level above 1 (default: min(repeat, 2))
  --strength S        Image-to-image strength (default 0.5)
  --no-oracle         Skip openvino_genai (ours only; ratios against the oracle are left out)
  --isa avx2          Both sides on the CPU plugin's AVX2 path, on a CPU with AVX-512: every child sees an AVX2-only
                      CPU (test/isa/avx2_cpu.c, checked from the plugin's kernels); the report says so beside the ISA
  --no-generate       Do not build the random model when it is missing (fail instead)
  --busy              Mark the results as taken on a busy machine (also detected automatically)
  --note TEXT         A note stored with the results
  --name NAME         Output name: bench/results/NAME.{json,md} and NAME-*.png (default latest, quick for --quick)
  --out DIR           Output folder (default bench/results)
  --no-charts         Do not draw PNG charts
  --verbose           Show the workers' own output
  --list              List the cases and exit
  --render FILE.json  Only redraw the markdown and charts of an earlier results file (next to it)
  --help              This text
`;

// ------------------------------------------------------------------------------------------------ options

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      cases: { type: 'string' },
      model: { type: 'string' },
      quick: { type: 'boolean' },
      steps: { type: 'string' },
      size: { type: 'string' },
      guidance: { type: 'string' },
      seed: { type: 'string' },
      prompt: { type: 'string' },
      repeat: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      threads: { type: 'string' },
      properties: { type: 'string' },
      concurrency: { type: 'string' },
      'concurrency-repeat': { type: 'string' },
      strength: { type: 'string' },
      'no-oracle': { type: 'boolean' },
      isa: { type: 'string' },
      'no-paired': { type: 'boolean' },
      'no-generate': { type: 'boolean' },
      busy: { type: 'boolean' },
      note: { type: 'string' },
      name: { type: 'string' },
      out: { type: 'string' },
      'no-charts': { type: 'boolean' },
      verbose: { type: 'boolean' },
      list: { type: 'boolean' },
      help: { type: 'boolean' },
      render: { type: 'string' },
    },
    strict: true,
  });
  const int = (name, value, min = 0) => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const quick = Boolean(values.quick);
  const cases = (values.cases || Object.keys(CASES).join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const c of cases) if (!CASES[c]) throw new Error(`unknown case '${c}'; cases: ${Object.keys(CASES).join(', ')}`);
  if (values.isa !== undefined && values.isa !== 'avx2') throw new Error(`--isa: '${values.isa}' is not avx2`);
  let size;
  if (values.size) {
    const m = /^(\d+)x(\d+)$/.exec(values.size);
    if (!m) throw new Error('--size must be WxH, e.g. 512x512');
    size = { width: Number(m[1]), height: Number(m[2]) };
  }
  let extra = {};
  if (values.properties) {
    extra = JSON.parse(values.properties);
    if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) throw new Error('--properties must be a JSON object');
  }
  const threads = int('threads', values.threads, 1) ?? os.availableParallelism();
  const repeat = int('repeat', values.repeat, 1) ?? (quick ? 2 : 3);
  const properties = { INFERENCE_NUM_THREADS: String(threads) };
  for (const [k, v] of Object.entries(extra)) properties[k] = typeof v === 'boolean' ? (v ? 'YES' : 'NO') : String(v);
  return {
    help: values.help,
    list: values.list,
    render: values.render,
    quick,
    cases,
    models: (values.model || (quick ? 'fixture:sd15' : `${RANDOM_MODEL},fixture:sd15`))
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    steps: int('steps', values.steps, 1) ?? 20,
    size,
    guidance: values.guidance !== undefined ? Number(values.guidance) : 7.5,
    seed: int('seed', values.seed, 0) ?? 42,
    prompt: values.prompt || DEFAULT_PROMPT,
    repeat,
    warmup: int('warmup', values.warmup, 0) ?? 1,
    rounds: Math.min(int('rounds', values.rounds, 1) ?? (quick ? 1 : 2), repeat),
    threads,
    properties,
    concurrency: (values.concurrency || '1,2,4,2s')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => {
        if (!/^\d+s?$/.test(s) || !(parseInt(s, 10) >= 1)) throw new Error(`--concurrency: '${s}' is not N or Ns`);
        return s;
      }),
    concurrencyRepeat: int('concurrency-repeat', values['concurrency-repeat'], 1) ?? Math.min(repeat, 2),
    strength: values.strength !== undefined ? Number(values.strength) : 0.5,
    oracle: !values['no-oracle'],
    isa: values.isa,
    paired: !values['no-paired'],
    generate: !values['no-generate'],
    busy: Boolean(values.busy),
    note: values.note,
    name: values.name || (quick ? 'quick' : 'latest'),
    out: path.resolve(values.out || path.join(ROOT, 'bench', 'results')),
    charts: !values['no-charts'],
    verbose: Boolean(values.verbose),
  };
}

async function main() {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${error.message}\n\n${HELP}`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write(HELP);
    return;
  }
  if (opts.list) {
    for (const [k, c] of Object.entries(CASES)) process.stdout.write(`${k.padEnd(12)} ${c.description}\n`);
    return;
  }
  if (opts.render) {
    const file = path.resolve(opts.render);
    const results = JSON.parse(fs.readFileSync(file, 'utf8'));
    const written = await writeReport(results, { ...opts, out: path.dirname(file), name: path.basename(file, '.json') }, CASES);
    for (const f of written) log(`wrote ${path.relative(process.cwd(), f)}`);
    return;
  }

  const build = ensureBuilt();
  const session = new Session(opts);
  log(
    `cases: ${opts.cases.join(', ')}; models: ${opts.models.join(', ')}; repeat ${opts.repeat}, warm-up ${opts.warmup}, ` +
      `properties ${JSON.stringify(opts.properties)} (both sides)`,
  );
  const machine = machineInfo();
  log(`machine: ${machine.cpu.model}, ${machine.cpu.logicalCores} logical CPUs, ${machine.ramGiB} GiB RAM`);
  if (opts.isa === 'avx2') {
    // Every child from here on (ours and the oracle) inherits the emulated CPU.
    const emulated = require('../test/isa/shim').emulateAvx2();
    if (emulated.skip || emulated.error) throw new Error(`--isa avx2: ${emulated.skip ?? emulated.error}`);
    Object.assign(process.env, emulated.env);
    machine.cpu.emulatedIsa = `AVX2 only (CPUID shim test/isa/avx2_cpu.c; ${emulated.kernels})`;
    log(`emulating an AVX2-only CPU: ${emulated.kernels}`);
  }
  const before = await sampleBusy(2000);
  log(
    `load before starting: other processes use ${(before.busyFraction * 100).toFixed(0)}% of the CPUs (loadavg ${before.loadavg.join(' ')})`,
  );
  if (opts.oracle) {
    session.oracleOk = ensureOracle();
    if (!session.oracleOk) log('WARNING: the openvino_genai oracle is not available; its side is skipped');
  }
  const models = [];
  for (const spec of opts.models) {
    try {
      models.push(await session.runModel(spec, CASES));
    } catch (error) {
      log(`model ${spec}: ERROR ${error.message}`);
      models.push({ id: spec, error: error.message, cases: {} });
    }
  }
  const after = await sampleBusy(1000);
  const foreign = session.foreign.map((f) => f.foreignCpu);
  const meanForeign = foreign.length ? foreign.reduce((a, b) => a + b, 0) / foreign.length : before.busyFraction;
  const maxForeign = foreign.length ? Math.max(...foreign) : before.busyFraction;
  const busy = opts.busy || before.busyFraction > 0.1 || meanForeign > 0.1;
  let git = {};
  try {
    git.commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    git.dirtyFiles = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).split('\n').filter(Boolean).length;
  } catch {
    git = { commit: 'unknown' };
  }
  const argv = process.argv.slice(2);
  const results = {
    schema: 1,
    meta: {
      date: new Date().toISOString(),
      durationSeconds: Math.round((Date.now() - T0) / 1000),
      command: `npm run bench${argv.length ? ` -- ${argv.map((a) => (/[\s'"{}]/.test(a) ? `'${a}'` : a)).join(' ')}` : ''}`,
      options: { ...opts, out: path.relative(ROOT, opts.out) },
      machine,
      versions: { ...session.versions, node: process.version },
      git,
      build,
      load: {
        before,
        after,
        busy,
        meanForeignCpu: meanForeign,
        maxForeignCpu: maxForeign,
        perWorker: session.foreign,
        verdict: busy
          ? `BUSY: other processes used ${(meanForeign * 100).toFixed(0)}% of the CPUs on average during the measurements (max ${(maxForeign * 100).toFixed(0)}%, ${(before.busyFraction * 100).toFixed(0)}% before the start); absolute times are noisy, re-run on a quiet machine`
          : `quiet: other processes used ${(meanForeign * 100).toFixed(1)}% of the CPUs on average during the measurements (max ${(maxForeign * 100).toFixed(0)}%)`,
      },
      note: opts.note,
    },
    models,
  };
  fs.mkdirSync(opts.out, { recursive: true });
  const written = await writeReport(results, opts, CASES);
  fs.rmSync(session.tmp, { recursive: true, force: true });
  log(`machine load: ${results.meta.load.verdict}`);
  for (const f of written) log(`wrote ${path.relative(process.cwd(), f)}`);
}

main().catch((error) => {
  process.stderr.write(`bench: ${error.stack || error}\n`);
  process.exit(1);
});
