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
const { execFileSync, spawnSync } = require('child_process');
const { parseArgs } = require('util');
const { summarize, percentiles, median, ratio } = require('./lib/stats');
const { machineInfo, sampleBusy, cpuTimes } = require('./lib/machine');
const { runWorker, startInteractive, startServer, foreignCpuShare, ORACLE_PYTHON, ROOT } = require('./lib/workers');
const { request, startProbe } = require('./lib/http');
const { writeReport } = require('./lib/report');

const CASES = {
  engine: 'engine vs openvino_genai: generate(), per step, text encode, VAE decode, load+compile cold/warm, peak RSS',
  reshape: 'static shapes (reshape) vs dynamic, ours and openvino_genai',
  server: 'HTTP /v3/images/generations latency minus the library call, PNG and JPEG, stream',
  eventloop: 'health p50/p99 every 10 ms while the server generates; setInterval lag in the library',
  concurrency: '1/2/4 simultaneous generations on one loaded model: throughput, latency, memory',
  edit: 'image-to-image (strength 0.5) and inpainting vs text-to-image with the same steps',
};
const RANDOM_MODEL = 'sd15-int8-random';
const DEFAULT_PROMPT = 'a photo of an astronaut riding a horse on mars';

const HELP = `Usage: npm run bench -- [options]      (or: node bench/run.js [options])

Options:
  --cases LIST        Comma-separated cases (default: all): ${Object.keys(CASES).join(', ')}
  --model LIST        Comma-separated models (default: ${RANDOM_MODEL},fixture:sd15):
                        ${RANDOM_MODEL}   full-size SD 1.5 INT8 with random weights (.cache/bench-models/; built
                                           by scripts/bench-models/make-sd15-random-int8.sh when missing)
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

// ------------------------------------------------------------------------------------------------ progress

const T0 = Date.now();
function log(message) {
  const s = Math.round((Date.now() - T0) / 1000);
  const stamp = `${String(Math.floor(s / 60)).padStart(3)}m${String(s % 60).padStart(2, '0')}s`;
  process.stdout.write(`[bench ${stamp}] ${message}\n`);
}
const fmtMs = (ms) => (ms >= 10000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

function progress(prefix) {
  return (e) => {
    if (e.event === 'load') log(`${prefix}: loaded in ${fmtMs(e.wallMs)} (RSS ${Math.round(e.rssMiB)} MiB)`);
    else if (e.event === 'run') {
      const step = e.metrics && e.metrics.stepMs && e.metrics.stepMs.length ? `, step ${fmtMs(median(e.metrics.stepMs))}` : '';
      const c = e.concurrency > 1 ? ` x${e.concurrency}` : '';
      log(`${prefix}: ${e.label}${c} #${e.index + 1}${e.warmup ? ' (warm-up)' : ''} ${fmtMs(e.wallMs)}${step}, ${e.steps} steps`);
    } else if (e.event === 'error') log(`${prefix}: ERROR ${e.message}`);
  };
}

// ------------------------------------------------------------------------------------------------ setup

function ensureBuilt() {
  const dist = path.join(ROOT, 'dist', 'index.js');
  const newest = (dir) => {
    let t = 0;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      t = Math.max(t, entry.isDirectory() ? newest(p) : p.endsWith('.ts') ? fs.statSync(p).mtimeMs : 0);
    }
    return t;
  };
  const stale =
    !fs.existsSync(dist) ||
    !fs.existsSync(path.join(ROOT, 'dist', 'server', 'main.js')) ||
    newest(path.join(ROOT, 'lib')) > fs.statSync(dist).mtimeMs;
  if (!stale) return { rebuilt: false };
  log('dist/ is missing or older than lib/: compiling the TypeScript (tsc -p tsconfig.json)');
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) {
    log(`WARNING: tsc failed; benchmarking the existing dist/ (${(r.stdout + r.stderr).split('\n').slice(0, 3).join(' / ')})`);
    return { rebuilt: false, tscFailed: true };
  }
  return { rebuilt: true };
}

function ensureOracle() {
  if (fs.existsSync(ORACLE_PYTHON)) return true;
  log('the openvino_genai oracle venv is missing: creating it (bash test/oracle/setup.sh)');
  const r = spawnSync('bash', [path.join(ROOT, 'test', 'oracle', 'setup.sh')], { cwd: ROOT, stdio: 'inherit' });
  return r.status === 0 && fs.existsSync(ORACLE_PYTHON);
}

function resolveModel(spec, opts) {
  if (spec === RANDOM_MODEL) {
    const dir = path.join(ROOT, '.cache', 'bench-models', RANDOM_MODEL);
    if (!fs.existsSync(path.join(dir, 'bench-model.json'))) {
      if (!opts.generate) throw new Error(`${dir} is missing; build it with bash scripts/bench-models/make-sd15-random-int8.sh`);
      log(`${RANDOM_MODEL} is missing: building it (bash scripts/bench-models/make-sd15-random-int8.sh; ~5-10 min, ~12 GB RAM)`);
      const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'bench-models', 'make-sd15-random-int8.sh')], {
        cwd: ROOT,
        stdio: 'inherit',
      });
      if (r.status !== 0) throw new Error('building the random model failed');
    }
    return {
      id: RANDOM_MODEL,
      dir,
      kind: 'random-full-size',
      info: JSON.parse(fs.readFileSync(path.join(dir, 'bench-model.json'), 'utf8')),
    };
  }
  if (spec.startsWith('fixture:')) {
    const name = spec.slice('fixture:'.length);
    const dir = path.join(ROOT, 'test', 'fixtures', name);
    if (!fs.existsSync(path.join(dir, 'model_index.json'))) throw new Error(`no fixture ${dir}`);
    return { id: `fixture-${name}`, dir, kind: 'tiny-fixture' };
  }
  const dir = path.resolve(spec);
  if (!fs.existsSync(path.join(dir, 'model_index.json'))) throw new Error(`${dir} is not a model folder (no model_index.json)`);
  return { id: path.basename(dir), dir, kind: 'folder' };
}

function modelDefaults(dir) {
  const read = (rel) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(dir, rel), 'utf8'));
    } catch {
      return {};
    }
  };
  const index = read('model_index.json');
  const unet = read('unet/config.json');
  const vae = read('vae_decoder/config.json');
  const scale = vae.block_out_channels ? 2 ** (vae.block_out_channels.length - 1) : 8;
  const sample = unet.sample_size || 64;
  return { className: index._class_name, width: sample * scale, height: sample * scale, inChannels: unet.in_channels };
}

/** Our library's LoadOptions has a `reshape` option when dist/diffusion-model.d.ts declares it. */
function oursHasReshape() {
  try {
    return /\breshape\??:/.test(fs.readFileSync(path.join(ROOT, 'dist', 'diffusion-model.d.ts'), 'utf8'));
  } catch {
    return false;
  }
}

/** A deterministic input picture and a centred rectangular mask (raw RGB u8 files) for the edit cases. */
function writeInputs(dir, width, height) {
  fs.mkdirSync(dir, { recursive: true });
  const image = Buffer.alloc(width * height * 3);
  const mask = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = (y * width + x) * 3;
      image[i] = Math.round(127 + 120 * Math.sin(x / 23) * Math.cos(y / 31));
      image[i + 1] = Math.round((255 * x) / width);
      image[i + 2] = Math.round((255 * y) / height);
      const inside = x >= width / 4 && x < (3 * width) / 4 && y >= height / 4 && y < (3 * height) / 4;
      mask.fill(inside ? 255 : 0, i, i + 3);
    }
  }
  const files = {
    image: path.join(dir, `image-${width}x${height}.rgb`),
    mask: path.join(dir, `mask-${width}x${height}.rgb`),
    width,
    height,
  };
  fs.writeFileSync(files.image, image);
  fs.writeFileSync(files.mask, mask);
  return files;
}

// ------------------------------------------------------------------------------------------------ figures

function eventsOf(res, type) {
  return res ? res.events.filter((e) => e.event === type) : [];
}
function firstEvent(res, type) {
  return eventsOf(res, type)[0];
}

/** Figures of one or more generation workers (rounds of the same measurement) for the runs labelled `label`. */
function generationFigures(resList, label) {
  const list = (Array.isArray(resList) ? resList : [resList]).filter(Boolean);
  if (!list.length) return null;
  const all = (type) => list.flatMap((r) => eventsOf(r, type));
  const runs = all('run').filter((e) => e.label === label);
  const measured = runs.filter((e) => !e.warmup);
  const warm = runs.filter((e) => e.warmup);
  const m = (key) => summarize(measured.map((e) => e.metrics[key]));
  const stepSum = measured.map((e) => e.metrics.stepMs.reduce((a, b) => a + b, 0));
  const foreign = list.map((r) => r.foreignCpu).filter((x) => x !== undefined);
  return {
    generateMs: summarize(measured.map((e) => e.wallMs)),
    cpuMs: summarize(measured.map((e) => e.cpuMs)),
    firstGenerateMs: summarize(warm.map((e) => e.wallMs)),
    engineTotalMs: m('totalMs'),
    stepMs: summarize(measured.map((e) => median(e.metrics.stepMs))),
    denoiserMs: summarize(measured.map((e) => median(e.metrics.denoiserMs))),
    denoiseTotalMs: summarize(stepSum),
    textEncodeMs: m('textEncodeMs'),
    vaeDecodeMs: m('vaeDecodeMs'),
    vaeEncodeMs: m('vaeEncodeMs'),
    otherMs: summarize(
      measured.map((e, i) => e.wallMs - stepSum[i] - e.metrics.textEncodeMs - e.metrics.vaeDecodeMs - e.metrics.vaeEncodeMs),
    ),
    steps: measured[0] ? measured[0].steps : undefined,
    sha256: [...new Set(runs.map((e) => e.sha256))],
    loadMs: summarize(all('load').map((e) => e.wallMs)),
    importedRssMiB: summarize(all('imported').map((e) => e.rssMiB)),
    afterLoadRssMiB: summarize(all('load').map((e) => e.rssMiB)),
    afterLoadAnonMiB: summarize(all('load').map((e) => e.anonMiB)),
    afterLoadFileMiB: summarize(all('load').map((e) => e.fileMiB)),
    peakRssMiB: summarize(all('end').map((e) => e.hwmMiB)),
    lag: percentiles(measured.flatMap((e) => e.lag || [])),
    foreignCpu: foreign.length ? foreign.reduce((a, b) => a + b, 0) / foreign.length : undefined,
    processes: list.length,
    runs: measured.length,
  };
}

function dirBytes(dir) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

function memAvailableMiB() {
  const text = fs.readFileSync('/proc/meminfo', 'utf8');
  return Number((/^MemAvailable:\s+(\d+)/m.exec(text) || [])[1] || 0) / 1024;
}

const single = (x) => (Number.isFinite(x) ? summarize([x]) : null);

function row(caseName, metric, value, base, extra = {}) {
  return { case: caseName, metric, value, base, ratio: ratio(value.s, base && base.s), ...extra };
}

/** Ours / openvino_genai over generations that ran back to back (ABBA): the median of the pairs' ratios. */
function pairRatioRow(caseName, what, pairs) {
  const s = summarize(pairs.map((p) => p.ours.wallMs / p.oracle.wallMs));
  return row(
    caseName,
    `${what} ours / openvino_genai, per alternating pair (median of the pairs' ratios)`,
    { label: 'ratio', s, unit: 'x' },
    null,
    { goal: '<= 1.00', pass: s.median <= 1 },
  );
}

// ------------------------------------------------------------------------------------------------ the run

class Bench {
  constructor(opts) {
    this.opts = opts;
    this.foreign = [];
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ov-diffusion-bench-'));
    this.oracleOk = false;
    this.versions = {};
  }

  /** Records the runtime versions (and our allocator setting) a worker reported in its 'load' event. */
  noteVersions(load, side) {
    if (!load) return;
    if (load.openvino) this.versions[side === 'oracle' ? 'oracleOpenvino' : 'openvino'] = load.openvino;
    if (load.genai) this.versions.genai = load.genai;
    if (load.allocator) this.versions.allocator = load.allocator;
  }

  async worker(kind, spec, label) {
    log(`${label}: starting ${kind === 'oracle' ? 'openvino_genai (Python)' : 'ours (Node)'} worker`);
    const res = await runWorker(kind, spec, { onEvent: progress(label), verbose: this.opts.verbose });
    if (res.foreignCpu !== undefined) this.foreign.push({ label, foreignCpu: res.foreignCpu });
    if (!res.ok) log(`${label}: FAILED: ${res.error}`);
    this.noteVersions(firstEvent(res, 'load'), kind === 'oracle' ? 'oracle' : 'ours');
    if (res.foreignCpu !== undefined && res.foreignCpu > 0.1)
      log(`${label}: note: other processes used ${(res.foreignCpu * 100).toFixed(0)}% of the CPUs meanwhile`);
    return res;
  }

  baseSpec(m, extra = {}) {
    return { model: m.dir, device: 'CPU', properties: { ...this.opts.properties }, ...extra };
  }

  t2iRun(m, extra = {}) {
    const o = this.opts;
    return {
      label: 't2i',
      task: 'text2image',
      prompt: o.prompt,
      width: m.width,
      height: m.height,
      steps: o.steps,
      guidance: o.guidance,
      seed: o.seed,
      repeat: o.repeat,
      warmup: o.warmup,
      ...extra,
    };
  }

  // Ours and the oracle's text-to-image, shared by every case. `--rounds` processes per side, alternating
  // ours / oracle (ABAB), so that a change of machine load during the run biases neither side.
  async t2i(m, side) {
    const key = `t2i-${side}`;
    if (!m.shared[key]) {
      const o = this.opts;
      // The oracle's runs are needed by the engine, reshape and edit cases only.
      const withOracle = this.oracleOk && ['engine', 'reshape', 'edit'].some((c) => o.cases.includes(c));
      const sides = side === 'oracle' || !withOracle ? [side] : ['ours', 'oracle'];
      for (const s of sides) m.shared[`t2i-${s}`] = [];
      if (sides.length === 2 && this.canPair(m)) {
        await this.t2iPaired(m);
        return m.shared[key];
      }
      for (let round = 0; round < o.rounds; round += 1) {
        const repeat = Math.ceil(o.repeat / o.rounds);
        for (const s of sides) {
          const spec = this.baseSpec(m, { runs: [this.t2iRun(m, { repeat })] });
          const label = `${m.id} · text-to-image · ${s}${o.rounds > 1 ? ` · round ${round + 1}/${o.rounds}` : ''}`;
          m.shared[`t2i-${s}`].push(await this.worker(s === 'ours' ? 'engine' : 'oracle', spec, label));
        }
      }
    }
    return m.shared[key];
  }

  // Both sides loaded at once, each in its own process (loaded one after the other); then generations alternate
  // ours / oracle in ABBA order, so that drift in machine speed (VM neighbours, other processes) hits both alike.
  // specOf(side): the worker spec; templates: runs (labels), each executed --repeat times per side after the warm-up.
  // Returns { results: {ours, oracle} (as runWorker), pairs: {label: [{ours, oracle}]} }.
  async paired(m, what, specOf, templates) {
    const o = this.opts;
    const before = cpuTimes();
    const selfBefore = process.cpuUsage();
    const handles = {};
    for (const side of ['ours', 'oracle']) {
      const label = `${m.id} · ${what} · ${side}`;
      log(`${label}: starting ${side === 'oracle' ? 'openvino_genai (Python)' : 'ours (Node)'} worker (kept loaded, runs alternate)`);
      const started = await startInteractive(side === 'ours' ? 'engine' : 'oracle', specOf(side), {
        onEvent: progress(label),
        verbose: o.verbose,
      });
      handles[side] = started.handle;
      if (!started.ok) log(`${label}: FAILED: ${started.error}`);
      this.noteVersions(
        started.handle.events.find((e) => e.event === 'load'),
        side,
      );
    }
    const pairs = {};
    if (o.warmup) for (const side of ['ours', 'oracle']) await handles[side].run({ ...templates[0], repeat: 0, warmup: o.warmup });
    for (let i = 0; i < o.repeat; i += 1) {
      for (const t of templates) {
        const order = i % 2 === 0 ? ['ours', 'oracle'] : ['oracle', 'ours'];
        const pair = {};
        for (const side of order) {
          const runs = await handles[side].run({ ...t, repeat: 1, warmup: 0, indexBase: (t === templates[0] ? o.warmup : 0) + i });
          if (runs && runs[0]) pair[side] = { wallMs: runs[0].wallMs, cpuMs: runs[0].cpuMs };
        }
        if (pair.ours && pair.oracle) {
          (pairs[t.label] = pairs[t.label] || []).push(pair);
          log(
            `${m.id} · ${what}: ${t.label} pair ${i + 1}/${o.repeat}: ours / openvino_genai = ${(pair.ours.wallMs / pair.oracle.wallMs).toFixed(3)}`,
          );
        }
      }
    }
    const results = {};
    for (const side of ['ours', 'oracle']) results[side] = await handles[side].quit();
    const after = cpuTimes();
    const self = process.cpuUsage(selfBefore);
    const ends = ['ours', 'oracle'].map((s) => results[s].events.find((e) => e.event === 'end'));
    if (ends.every((e) => e && Number.isFinite(e.cpuMs))) {
      const foreign = foreignCpuShare(before, after, ends[0].cpuMs + ends[1].cpuMs, self);
      for (const s of ['ours', 'oracle']) results[s].foreignCpu = foreign;
      if (foreign !== undefined) {
        this.foreign.push({ label: `${m.id} · ${what} (both sides)`, foreignCpu: foreign });
        if (foreign > 0.1) log(`${m.id} · ${what}: note: other processes used ${(foreign * 100).toFixed(0)}% of the CPUs meanwhile`);
      }
    }
    for (const s of ['ours', 'oracle']) if (!results[s].ok) log(`${m.id} · ${what} · ${s}: FAILED: ${results[s].error}`);
    return { results, pairs };
  }

  /** Whether both sides fit in memory at once (the model's weights ~5x its folder size at peak, per process). */
  canPair(m) {
    if (!this.opts.paired || !this.oracleOk) return false;
    const need = (2 * 5 * dirBytes(m.dir)) / 1048576 + 1024;
    if (need < 0.8 * memAvailableMiB()) return true;
    log(`${m.id}: not enough memory to keep both sides loaded (~${Math.round(need)} MiB); one process after the other instead`);
    return false;
  }

  async t2iPaired(m) {
    const { results, pairs } = await this.paired(m, 'text-to-image', () => this.baseSpec(m, { runs: [], tasks: ['text2image'] }), [
      this.t2iRun(m),
    ]);
    m.shared['t2i-ours'].push(results.ours);
    m.shared['t2i-oracle'].push(results.oracle);
    m.shared.pairs = pairs.t2i || [];
  }

  async caseEngine(m) {
    const o = this.opts;
    const rows = [];
    const res = { ours: await this.t2i(m, 'ours') };
    if (this.oracleOk) res.oracle = await this.t2i(m, 'oracle');
    const ours = generationFigures(res.ours, 't2i');
    const oracle = res.oracle ? generationFigures(res.oracle, 't2i') : null;

    // Load + compile: no compile cache, first load with an empty CACHE_DIR (fills it), then warm from it.
    const loads = {};
    for (const side of this.oracleOk ? ['ours', 'oracle'] : ['ours']) {
      const kind = side === 'ours' ? 'engine' : 'oracle';
      const cacheDir = path.join(this.tmp, `cache-${m.id}-${side}`);
      fs.rmSync(cacheDir, { recursive: true, force: true });
      const l = { cold: [], fill: [], warm: [], coldPeak: [], warmPeak: [] };
      for (let i = 0; i < o.repeat; i += 1) {
        const r = await this.worker(kind, this.baseSpec(m, { runs: [] }), `${m.id} · load (no cache) ${i + 1}/${o.repeat} · ${side}`);
        const e = firstEvent(r, 'load');
        if (e) {
          l.cold.push(e.wallMs);
          l.coldPeak.push(firstEvent(r, 'end')?.hwmMiB);
        }
      }
      const spec = this.baseSpec(m, { runs: [] });
      spec.properties.CACHE_DIR = cacheDir;
      const fill = await this.worker(kind, spec, `${m.id} · load (filling CACHE_DIR) · ${side}`);
      if (firstEvent(fill, 'load')) l.fill.push(firstEvent(fill, 'load').wallMs);
      for (let i = 0; i < o.repeat; i += 1) {
        const r = await this.worker(kind, spec, `${m.id} · load (warm CACHE_DIR) ${i + 1}/${o.repeat} · ${side}`);
        const e = firstEvent(r, 'load');
        if (e) {
          l.warm.push(e.wallMs);
          l.warmPeak.push(firstEvent(r, 'end')?.hwmMiB);
        }
      }
      let cacheBytes = 0;
      try {
        for (const f of fs.readdirSync(cacheDir)) cacheBytes += fs.statSync(path.join(cacheDir, f)).size;
      } catch {
        /* none */
      }
      loads[side] = {
        cold: summarize(l.cold),
        fill: summarize(l.fill),
        warm: summarize(l.warm),
        coldPeakRssMiB: summarize(l.coldPeak),
        warmPeakRssMiB: summarize(l.warmPeak),
        cacheMiB: cacheBytes / 1048576,
      };
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }

    const v = (label, s, unit = 'ms') => ({ label, s, unit });
    const pair = (metric, a, b, unit = 'ms', extra = {}) =>
      rows.push(row('engine', metric, v('ours', a, unit), oracle || loads.oracle ? v('openvino_genai', b, unit) : null, extra));
    pair('generate() wall time', ours.generateMs, oracle && oracle.generateMs, 'ms', { goal: '<= 1.00' });
    if (m.shared.pairs && m.shared.pairs.length) rows.push(pairRatioRow('engine', 'generate()', m.shared.pairs));
    pair('CPU time per generate() (all threads)', ours.cpuMs, oracle && oracle.cpuMs);
    pair('first generate() after load', ours.firstGenerateMs, oracle && oracle.firstGenerateMs);
    pair('time per denoising step (median)', ours.stepMs, oracle && oracle.stepMs);
    pair('UNet infer per step (median)', ours.denoiserMs, oracle && oracle.denoiserMs);
    pair('text encode', ours.textEncodeMs, oracle && oracle.textEncodeMs);
    pair('VAE decode', ours.vaeDecodeMs, oracle && oracle.vaeDecodeMs);
    pair('outside the models (wall - steps - encode - decode)', ours.otherMs, oracle && oracle.otherMs);
    pair('load+compile, no cache', loads.ours.cold, loads.oracle && loads.oracle.cold);
    pair('load+compile, filling CACHE_DIR', loads.ours.fill, loads.oracle && loads.oracle.fill);
    pair('load+compile, warm CACHE_DIR', loads.ours.warm, loads.oracle && loads.oracle.warm);
    pair('peak RSS (VmHWM), load + generations', ours.peakRssMiB, oracle && oracle.peakRssMiB, 'MiB', { goal: '<= 1.00' });
    pair('RSS after load', ours.afterLoadRssMiB, oracle && oracle.afterLoadRssMiB, 'MiB');
    pair('RSS after load: anonymous', ours.afterLoadAnonMiB, oracle && oracle.afterLoadAnonMiB, 'MiB');
    pair('RSS after load: file-backed (mapped files)', ours.afterLoadFileMiB, oracle && oracle.afterLoadFileMiB, 'MiB');
    pair('RSS of the bare process (runtime imported, no model)', ours.importedRssMiB, oracle && oracle.importedRssMiB, 'MiB');
    pair('peak RSS, load only (no cache)', loads.ours.coldPeakRssMiB, loads.oracle && loads.oracle.coldPeakRssMiB, 'MiB');
    pair('peak RSS, load only (warm CACHE_DIR)', loads.ours.warmPeakRssMiB, loads.oracle && loads.oracle.warmPeakRssMiB, 'MiB');
    const parity = oracle
      ? {
          equal: ours.sha256.length === 1 && oracle.sha256.length === 1 && ours.sha256[0] === oracle.sha256[0],
          ours: ours.sha256,
          oracle: oracle.sha256,
        }
      : null;
    if (parity) log(`${m.id} · engine: images ${parity.equal ? 'identical to' : 'DIFFERENT from'} openvino_genai's (sha256)`);
    return { status: 'ok', ours, oracle, loads, parity, rows };
  }

  async caseReshape(m) {
    const rows = [];
    // Ours: LoadOptions.reshape {width, height, numImagesPerPrompt, guidanceScale}; oracle: pipe.reshape(batch, h, w, guidance).
    const reshapeOf = (side) =>
      side === 'ours'
        ? { width: m.width, height: m.height, numImagesPerPrompt: 1, guidanceScale: this.opts.guidance }
        : { batch: 1, width: m.width, height: m.height, guidance: this.opts.guidance };
    const result = { status: 'ok', rows, oursAvailable: oursHasReshape() };
    const v = (label, s, unit = 'ms') => ({ label, s, unit });
    const sides = [];
    if (result.oursAvailable) sides.push('ours');
    else result.note = 'ours: LoadOptions has no reshape option yet (checked dist/diffusion-model.d.ts); only openvino_genai is measured';
    if (this.oracleOk) sides.push('oracle');
    const figures = {};
    // Static runs: both sides loaded at once with alternating generations when they fit, else one after the other.
    let staticRuns = null;
    let staticPairs = [];
    if (sides.length === 2 && this.canPair(m)) {
      const { results, pairs } = await this.paired(
        m,
        'static reshape',
        (side) => this.baseSpec(m, { reshape: reshapeOf(side), runs: [], tasks: ['text2image'] }),
        [this.t2iRun(m)],
      );
      staticRuns = results;
      staticPairs = pairs.t2i || [];
    }
    for (const side of sides) {
      const dyn = generationFigures(await this.t2i(m, side), 't2i');
      const st = staticRuns
        ? staticRuns[side]
        : await this.worker(
            side === 'ours' ? 'engine' : 'oracle',
            this.baseSpec(m, { reshape: reshapeOf(side), runs: [this.t2iRun(m)] }),
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

  async ensureServer(m) {
    if (m.server !== undefined) return m.server;
    log(`${m.id} · server: starting the server (dist/server/main.js) with this model`);
    const started = await startServer(
      { model: m.dir, properties: this.opts.properties, maxConcurrency: 1 },
      { verbose: this.opts.verbose },
    );
    if (!started.ok) {
      log(`${m.id} · server: not available: ${started.error}`);
      m.server = { ok: false, error: started.error, unavailable: started.unavailable };
      return m.server;
    }
    const ready = started.handle.events.find((e) => e.event === 'ready');
    log(`${m.id} · server: listening on ${started.handle.url} (RSS ${Math.round(ready.rssMiB)} MiB)`);
    m.server = { ok: true, handle: started.handle, url: started.handle.url, readyRssMiB: ready.rssMiB };
    return m.server;
  }

  generationBody(m, extra = {}) {
    return {
      model: 'bench',
      prompt: this.opts.prompt,
      size: `${m.width}x${m.height}`,
      num_inference_steps: this.opts.steps,
      guidance_scale: this.opts.guidance,
      rng_seed: this.opts.seed,
      ...extra,
    };
  }

  /** One generation request; pairs it with the server's own library-call time. */
  async timedGeneration(m, server, extra) {
    const res = await request(`${server.url}/v3/images/generations`, { method: 'POST', body: this.generationBody(m, extra) });
    if (res.status !== 200) return { status: res.status, error: res.body.toString().slice(0, 300) };
    const lib = await server.handle.next('libcall', 30000);
    return { status: 200, httpMs: res.ms, libMs: lib.ms, engineMs: lib.engineMs, bytes: res.body.length };
  }

  async caseServer(m) {
    const o = this.opts;
    const server = await this.ensureServer(m);
    if (!server.ok) return { status: 'skipped', note: `server not available: ${server.error}` };
    const rows = [];
    const result = { status: 'ok', rows, formats: {} };
    for (let i = 0; i < o.warmup; i += 1) {
      const r = await this.timedGeneration(m, server, { output_format: 'png' });
      log(`${m.id} · server: warm-up request ${r.status === 200 ? fmtMs(r.httpMs) : `failed ${r.status} ${r.error}`}`);
      if (r.status !== 200) return { status: 'error', note: `generation request failed: ${r.status} ${r.error}` };
    }
    const v = (label, s, unit = 'ms') => ({ label, s, unit });
    for (const format of ['png', 'jpeg']) {
      const samples = [];
      for (let i = 0; i < o.repeat; i += 1) {
        const r = await this.timedGeneration(m, server, { output_format: format });
        if (r.status !== 200) {
          result.formats[format] = { error: r.error };
          break;
        }
        samples.push(r);
        log(
          `${m.id} · server: ${format} #${i + 1} HTTP ${fmtMs(r.httpMs)}, library ${fmtMs(r.libMs)}, overhead ${fmtMs(r.httpMs - r.libMs)} (${r.bytes} bytes)`,
        );
      }
      if (!samples.length) continue;
      const http = summarize(samples.map((s) => s.httpMs));
      const lib = summarize(samples.map((s) => s.libMs));
      const overhead = summarize(samples.map((s) => s.httpMs - s.libMs));
      const pct = summarize(samples.map((s) => (100 * (s.httpMs - s.libMs)) / s.libMs));
      result.formats[format] = { http, lib, overhead, overheadPct: pct, bytes: summarize(samples.map((s) => s.bytes)) };
      rows.push(
        row(
          'server',
          `HTTP latency, ${m.width}x${m.height} ${format.toUpperCase()}`,
          v('HTTP end to end', http),
          v('library call in the server', lib),
          { goal: '<= 1.02' },
        ),
      );
      rows.push(row('server', `server overhead, ${format.toUpperCase()} (HTTP - library)`, v('overhead', overhead), null));
      rows.push(
        row('server', `server overhead, ${format.toUpperCase()}, % of generation`, v('overhead %', pct, '%'), null, {
          goal: '<= 2 %',
          pass: pct.median <= 2,
        }),
      );
    }
    const oursLib = m.shared['t2i-ours'] && generationFigures(m.shared['t2i-ours'], 't2i');
    if (oursLib && result.formats.png && result.formats.png.http)
      rows.push(
        row(
          'server',
          'HTTP PNG vs library in its own process (cross-process, informative)',
          v('HTTP end to end', result.formats.png.http),
          v('library process', oursLib.generateMs),
        ),
      );
    // stream: true (server-sent events), without and with partial images (each preview costs one VAE decode, which
    // is inside the library call). Overhead = HTTP end to end - the library call, as above.
    const probe = await request(`${server.url}/v3/images/generations`, {
      method: 'POST',
      body: this.generationBody(m, { stream: true, num_inference_steps: 1 }),
    });
    const isSse = probe.status === 200 && /event-stream/.test(String(probe.headers['content-type']));
    if (probe.status === 200) await server.handle.next('libcall', 30000).catch(() => undefined);
    if (isSse) {
      result.stream = { supported: true, contentType: probe.headers['content-type'], variants: {} };
      const variants = [
        ['stream', {}, o.repeat],
        ['stream, 2 partial images', { partial_images: 2 }, Math.min(o.repeat, 2)],
      ];
      for (const [name, extra, count] of variants) {
        const samples = [];
        for (let i = 0; i < count; i += 1) {
          const r = await request(`${server.url}/v3/images/generations`, {
            method: 'POST',
            body: this.generationBody(m, { stream: true, ...extra }),
            marks: ['image_generation.partial_image', 'image_generation.completed'],
          });
          const lib = await server.handle.next('libcall', 30000).catch(() => undefined);
          if (r.status !== 200 || !lib) {
            result.stream.variants[name] = { error: `HTTP ${r.status}` };
            break;
          }
          const events = (r.body.toString('latin1').match(/^event: /gm) || []).length;
          samples.push({
            http: r.ms,
            lib: lib.ms,
            first: r.firstByteMs,
            partial: r.markMs['image_generation.partial_image'],
            completed: r.markMs['image_generation.completed'],
            events,
          });
          log(
            `${m.id} · server: ${name} #${i + 1} HTTP ${fmtMs(r.ms)}, library ${fmtMs(lib.ms)}, overhead ${fmtMs(r.ms - lib.ms)}, ${events} events` +
              `${r.markMs['image_generation.partial_image'] ? `, first partial image at ${fmtMs(r.markMs['image_generation.partial_image'])}` : ''}`,
          );
        }
        if (!samples.length) continue;
        const f = {
          http: summarize(samples.map((x) => x.http)),
          lib: summarize(samples.map((x) => x.lib)),
          overhead: summarize(samples.map((x) => x.http - x.lib)),
          overheadPct: summarize(samples.map((x) => (100 * (x.http - x.lib)) / x.lib)),
          firstPartial: summarize(samples.map((x) => x.partial)),
          completed: summarize(samples.map((x) => x.completed)),
          events: samples[0].events,
        };
        result.stream.variants[name] = f;
        rows.push(
          row('server', `HTTP latency, ${name}`, v('HTTP end to end', f.http), v('library call in the server', f.lib), { goal: '<= 1.02' }),
        );
        rows.push(
          row('server', `server overhead, ${name}, % of generation`, v('overhead %', f.overheadPct, '%'), null, {
            goal: '<= 2 %',
            pass: f.overheadPct.median <= 2,
          }),
        );
        if (f.firstPartial)
          rows.push(
            row(
              'server',
              `${name}: first partial image arrives`,
              v('first partial image', f.firstPartial),
              v('completed event', f.completed),
            ),
          );
      }
    } else {
      let message = probe.body.toString().slice(0, 300);
      try {
        message = JSON.parse(message).error.message;
      } catch {
        /* raw */
      }
      result.stream = {
        supported: false,
        status: probe.status,
        contentType: probe.headers['content-type'],
        message: probe.status === 200 ? `answered ${probe.headers['content-type']} instead of text/event-stream` : message,
      };
      log(`${m.id} · server: stream: true not measured: HTTP ${probe.status} ${result.stream.message}`);
    }
    const mem = await server.handle.memory().catch(() => undefined);
    if (mem) {
      result.peakRssMiB = mem.hwmMiB;
      if (oursLib)
        rows.push(
          row(
            'server',
            'peak RSS, server vs library process',
            v('server', single(mem.hwmMiB), 'MiB'),
            v('library process', oursLib.peakRssMiB, 'MiB'),
          ),
        );
    }
    return result;
  }

  async caseEventLoop(m) {
    const o = this.opts;
    const rows = [];
    const result = { status: 'ok', rows };
    const v = (label, s, unit = 'ms') => ({ label, s, unit });
    const server = await this.ensureServer(m);
    if (server.ok) {
      const health = `${server.url}/healthz`;
      for (let i = 0; i < 20; i += 1) await request(health); // connections warm
      let probe = startProbe(health, 10);
      await new Promise((r) => setTimeout(r, 3000));
      const idle = await probe.stop();
      const { busy, perRun } = await this.probeDuringGenerations(m, server, o.repeat, {}, 'eventloop');
      result.health = {
        idle: percentiles(idle.latencies),
        busy: percentiles(busy.latencies),
        failures: busy.failures + idle.failures,
        perRun,
      };
      const p99s = summarize(perRun.filter(Boolean).map((p) => p.p99));
      const p50s = summarize(perRun.filter(Boolean).map((p) => p.p50));
      const idleP = result.health.idle;
      rows.push(
        row('eventloop', 'server /healthz p50 while generating', v('generating', p50s), v('idle server', single(idleP && idleP.p50))),
      );
      rows.push(
        row('eventloop', 'server /healthz p99 while generating', v('generating', p99s), v('idle server', single(idleP && idleP.p99)), {
          goal: '< 10 ms',
          pass: p99s && p99s.median < 10,
        }),
      );
      rows.push(
        row(
          'eventloop',
          'server /healthz max while generating',
          v('generating', summarize(perRun.filter(Boolean).map((p) => p.max))),
          v('idle server', single(idleP && idleP.max)),
        ),
      );
      // The same with one CPU left to the event loop (INFERENCE_NUM_THREADS = threads - 1): shows whether a slow p99
      // comes from the inference threads taking every core. One generation of at most 5 steps.
      if (o.threads > 1) {
        const threads = String(o.threads - 1);
        log(`${m.id} · eventloop: a second server with INFERENCE_NUM_THREADS=${threads}`);
        const spare = await startServer(
          { model: m.dir, properties: { ...o.properties, INFERENCE_NUM_THREADS: threads }, maxConcurrency: 1 },
          { verbose: o.verbose },
        );
        if (spare.ok) {
          const srv = { ok: true, handle: spare.handle, url: spare.handle.url };
          for (let i = 0; i < 20; i += 1) await request(`${srv.url}/healthz`);
          const got = await this.probeDuringGenerations(
            m,
            srv,
            1,
            { num_inference_steps: Math.min(o.steps, 5) },
            `eventloop (${threads} inference threads)`,
          );
          await spare.handle.stop();
          const q = got.perRun[0];
          result.spareCore = { threads: Number(threads), health: q };
          if (q)
            rows.push(
              row(
                'eventloop',
                `server /healthz p99 while generating, INFERENCE_NUM_THREADS=${threads}`,
                v(`${threads} inference threads`, single(q.p99)),
                v(`${o.threads} inference threads`, p99s),
                { goal: '< 10 ms', pass: q.p99 < 10 },
              ),
            );
        } else {
          log(`${m.id} · eventloop: the second server did not start: ${spare.error}`);
        }
      }
    } else {
      result.serverNote = `server not available: ${server.error}`;
    }
    // In-process: setInterval(10 ms) lag in the library's own process during generate(). Its own worker: the probe
    // wakes the main thread 100 times a second, which on a machine with few cores costs the inference threads a little.
    const lagRes = await this.worker(
      'engine',
      this.baseSpec(m, { runs: [this.t2iRun(m, { label: 'lag', lag: true })] }),
      `${m.id} · library event loop (setInterval probe)`,
    );
    const lib = generationFigures(lagRes, 'lag');
    const perRun = eventsOf(lagRes, 'run')
      .filter((e) => !e.warmup && e.lag)
      .map((e) => percentiles(e.lag))
      .filter(Boolean);
    result.libraryLag = lib.lag;
    const plain = generationFigures(await this.t2i(m, 'ours'), 't2i');
    rows.push(
      row(
        'eventloop',
        'library: generate() with the 10 ms probe running',
        v('with probe', lib.generateMs),
        v('without (engine case)', plain.generateMs),
      ),
    );
    rows.push(
      row('eventloop', 'library: setInterval(10 ms) lag p50 during generate()', v('lag', summarize(perRun.map((p) => p.p50))), null),
    );
    rows.push(
      row('eventloop', 'library: setInterval(10 ms) lag p99 during generate()', v('lag', summarize(perRun.map((p) => p.p99))), null, {
        goal: '< 10 ms',
        pass: perRun.length > 0 && median(perRun.map((p) => p.p99)) < 10,
      }),
    );
    rows.push(
      row('eventloop', 'library: setInterval(10 ms) lag max during generate()', v('lag', summarize(perRun.map((p) => p.max))), null),
    );
    return result;
  }

  /** /healthz every 10 ms while each of `count` generations runs: all latencies, and percentiles per generation. */
  async probeDuringGenerations(m, server, count, extra, label) {
    const health = `${server.url}/healthz`;
    const busy = { latencies: [], failures: 0 };
    const perRun = [];
    for (let i = 0; i < count; i += 1) {
      const probe = startProbe(health, 10);
      const r = await this.timedGeneration(m, server, { output_format: 'png', ...extra });
      const got = await probe.stop();
      busy.latencies.push(...got.latencies);
      busy.failures += got.failures;
      const p = percentiles(got.latencies);
      perRun.push(p);
      log(
        `${m.id} · ${label}: generation #${i + 1} ${r.status === 200 ? fmtMs(r.httpMs) : `failed ${r.status}`}: health p50 ${p ? p.p50.toFixed(2) : '?'} ms, ` +
          `p99 ${p ? p.p99.toFixed(2) : '?'} ms, max ${p ? p.max.toFixed(1) : '?'} ms (${got.latencies.length} probes)`,
      );
    }
    return { busy, perRun };
  }

  async caseConcurrency(m) {
    const o = this.opts;
    const rows = [];
    const levels = {};
    const describe = (key) => `${parseInt(key, 10)} at once${key.endsWith('s') ? `, NUM_STREAMS=${parseInt(key, 10)}` : ''}`;
    for (const key of o.concurrency) {
      const n = parseInt(key, 10);
      const streams = key.endsWith('s');
      let fig;
      if (n === 1 && !streams) {
        const f = generationFigures(await this.t2i(m, 'ours'), 't2i');
        const runs = m.shared['t2i-ours'].flatMap((r) => eventsOf(r, 'run')).filter((e) => e.label === 't2i' && !e.warmup);
        fig = {
          wallMs: f.generateMs,
          throughput: summarize(runs.map((e) => 60000 / e.wallMs)),
          latency: f.generateMs,
          peakRssMiB: f.peakRssMiB,
          stepMs: f.stepMs,
        };
      } else {
        // Guard against swapping (or the OOM killer hitting other processes): estimate from one-at-a-time.
        const f1 = m.shared['t2i-ours'] && generationFigures(m.shared['t2i-ours'], 't2i');
        if (f1 && f1.afterLoadRssMiB && f1.peakRssMiB) {
          const need = (streams ? n : 1) * f1.afterLoadRssMiB.median + n * Math.max(0, f1.peakRssMiB.max - f1.afterLoadRssMiB.median);
          const avail = memAvailableMiB();
          if (need > 0.85 * avail) {
            log(
              `${m.id} · concurrency ${describe(key)}: skipped, it may need ~${Math.round(need)} MiB and ${Math.round(avail)} MiB are available`,
            );
            levels[key] = { error: `skipped: may need ~${Math.round(need)} MiB, ${Math.round(avail)} MiB available` };
            continue;
          }
        }
        const spec = this.baseSpec(m, {
          maxConcurrency: n,
          runs: [
            this.t2iRun(m, { label: 'warm', repeat: 0, warmup: o.warmup }),
            this.t2iRun(m, { label: `c${key}`, concurrency: n, repeat: o.concurrencyRepeat, warmup: 0 }),
          ],
        });
        if (streams) spec.properties.NUM_STREAMS = String(n);
        const res = await this.worker('engine', spec, `${m.id} · concurrency ${describe(key)}`);
        const runs = eventsOf(res, 'run').filter((e) => e.label === `c${key}`);
        if (!runs.length) {
          levels[key] = { error: res.error };
          continue;
        }
        fig = {
          wallMs: summarize(runs.map((e) => e.wallMs)),
          throughput: summarize(runs.map((e) => (60000 * n) / e.wallMs)),
          latency: summarize(runs.flatMap((e) => e.latencies)),
          peakRssMiB: single(firstEvent(res, 'end')?.hwmMiB),
          stepMs: summarize(runs.flatMap((e) => e.allMetrics.map((x) => median(x.stepMs)))),
        };
      }
      fig.label = describe(key);
      levels[key] = fig;
    }
    const v = (label, s, unit) => ({ label, s, unit });
    const base = levels['1'];
    for (const key of o.concurrency) {
      const f = levels[key];
      if (!f || f.error) continue;
      const what = describe(key);
      rows.push(
        row(
          'concurrency',
          `${what}: throughput`,
          v(what, f.throughput, 'img/min'),
          base ? v('1 at a time', base.throughput, 'img/min') : null,
        ),
      );
      rows.push(
        row('concurrency', `${what}: latency per request`, v(what, f.latency, 'ms'), base ? v('1 at a time', base.latency, 'ms') : null),
      );
      rows.push(
        row('concurrency', `${what}: peak RSS`, v(what, f.peakRssMiB, 'MiB'), base ? v('1 at a time', base.peakRssMiB, 'MiB') : null),
      );
    }
    const skipped = Object.entries(levels)
      .filter(([, f]) => f && f.error)
      .map(([k, f]) => `${describe(k)}: ${f.error}`);
    return { status: 'ok', levels, rows, note: skipped.length ? skipped.join('; ') : undefined };
  }

  async caseEdit(m) {
    const o = this.opts;
    const rows = [];
    const inputs = writeInputs(path.join(this.tmp, 'inputs'), m.width, m.height);
    const result = { status: 'ok', rows, strength: o.strength, sides: {} };
    if (m.inChannels && m.inChannels !== 4)
      return { status: 'skipped', note: `the UNet has ${m.inChannels} input channels (a dedicated inpainting model)` };
    const v = (label, s, unit = 'ms') => ({ label, s, unit });
    for (const side of this.oracleOk ? ['ours', 'oracle'] : ['ours']) {
      const t2i = generationFigures(await this.t2i(m, side), 't2i');
      const spec = this.baseSpec(m, {
        inputs,
        runs: [
          this.t2iRun(m, { label: 'i2i', task: 'image2image', strength: o.strength }),
          this.t2iRun(m, { label: 'inpaint', task: 'inpainting', warmup: 0 }),
        ],
      });
      const res = await this.worker(side === 'ours' ? 'engine' : 'oracle', spec, `${m.id} · image-to-image + inpainting · ${side}`);
      const i2i = generationFigures(res, 'i2i');
      const inp = generationFigures(res, 'inpaint');
      result.sides[side] = { t2i, i2i, inpaint: inp, error: res.ok ? undefined : res.error };
      const who = side === 'ours' ? 'ours' : 'openvino_genai';
      if (i2i && i2i.generateMs) {
        rows.push(
          row(
            'edit',
            `${who}: image-to-image, strength ${o.strength} (${i2i.steps} of ${o.steps} steps run)`,
            v('image-to-image', i2i.generateMs),
            v('text-to-image', t2i.generateMs),
          ),
        );
        rows.push(row('edit', `${who}: image-to-image VAE encode`, v('VAE encode', i2i.vaeEncodeMs), null));
      }
      if (inp && inp.generateMs)
        rows.push(
          row('edit', `${who}: inpainting (${inp.steps} steps run)`, v('inpainting', inp.generateMs), v('text-to-image', t2i.generateMs)),
        );
    }
    const a = result.sides.ours,
      b = result.sides.oracle;
    if (a && b) {
      if (a.i2i && b.i2i)
        rows.push(
          row('edit', 'image-to-image: ours / openvino_genai', v('ours', a.i2i.generateMs), v('openvino_genai', b.i2i.generateMs), {
            goal: '<= 1.00',
          }),
        );
      if (a.inpaint && b.inpaint)
        rows.push(
          row('edit', 'inpainting: ours / openvino_genai', v('ours', a.inpaint.generateMs), v('openvino_genai', b.inpaint.generateMs), {
            goal: '<= 1.00',
          }),
        );
      const same = (x, y) => x && y && x.sha256.length === 1 && x.sha256[0] === y.sha256[0];
      result.parity = { image2image: same(a.i2i, b.i2i), inpainting: same(a.inpaint, b.inpaint) };
    }
    return result;
  }

  async runModel(spec) {
    const o = this.opts;
    const m = resolveModel(spec, o);
    const d = modelDefaults(m.dir);
    m.width = o.size ? o.size.width : d.width;
    m.height = o.size ? o.size.height : d.height;
    m.className = d.className;
    m.inChannels = d.inChannels;
    m.shared = {};
    log(`=== model ${m.id} (${m.dir}): ${m.className}, ${m.width}x${m.height}, ${o.steps} steps, guidance ${o.guidance}, seed ${o.seed}`);
    const out = {
      id: m.id,
      path: path.relative(ROOT, m.dir) || m.dir,
      kind: m.kind,
      info: m.info,
      className: m.className,
      width: m.width,
      height: m.height,
      steps: o.steps,
      guidance: o.guidance,
      seed: o.seed,
      cases: {},
    };
    const order = ['engine', 'reshape', 'edit', 'concurrency', 'server', 'eventloop'].filter((c) => o.cases.includes(c));
    for (const c of order) {
      const started = Date.now();
      log(`--- ${m.id} · case ${c}: ${CASES[c]}`);
      try {
        const fn = {
          engine: this.caseEngine,
          reshape: this.caseReshape,
          server: this.caseServer,
          eventloop: this.caseEventLoop,
          concurrency: this.caseConcurrency,
          edit: this.caseEdit,
        }[c];
        out.cases[c] = await fn.call(this, m);
      } catch (error) {
        log(`${m.id} · case ${c}: ERROR ${error.stack || error}`);
        out.cases[c] = { status: 'error', note: String(error.message || error), rows: [] };
      }
      out.cases[c].seconds = Math.round((Date.now() - started) / 1000);
    }
    if (m.server && m.server.ok) {
      const end = await m.server.handle.stop();
      if (m.server.handle.foreignCpu !== undefined)
        this.foreign.push({ label: `${m.id} · server`, foreignCpu: m.server.handle.foreignCpu });
      if (end && out.cases.server) out.cases.server.endPeakRssMiB = end.hwmMiB;
    }
    return out;
  }
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
    for (const [k, v] of Object.entries(CASES)) process.stdout.write(`${k.padEnd(12)} ${v}\n`);
    return;
  }
  if (opts.render) {
    const file = path.resolve(opts.render);
    const results = JSON.parse(fs.readFileSync(file, 'utf8'));
    const written = await writeReport(results, { ...opts, out: path.dirname(file), name: path.basename(file, '.json') });
    for (const f of written) log(`wrote ${path.relative(process.cwd(), f)}`);
    return;
  }

  const build = ensureBuilt();
  const bench = new Bench(opts);
  log(
    `cases: ${opts.cases.join(', ')}; models: ${opts.models.join(', ')}; repeat ${opts.repeat}, warm-up ${opts.warmup}, ` +
      `properties ${JSON.stringify(opts.properties)} (both sides)`,
  );
  const machine = machineInfo();
  log(`machine: ${machine.cpu.model}, ${machine.cpu.logicalCores} logical CPUs, ${machine.ramGiB} GiB RAM`);
  const before = await sampleBusy(2000);
  log(
    `load before starting: other processes use ${(before.busyFraction * 100).toFixed(0)}% of the CPUs (loadavg ${before.loadavg.join(' ')})`,
  );
  if (opts.oracle) {
    bench.oracleOk = ensureOracle();
    if (!bench.oracleOk) log('WARNING: the openvino_genai oracle is not available; its side is skipped');
  }
  const models = [];
  for (const spec of opts.models) {
    try {
      models.push(await bench.runModel(spec));
    } catch (error) {
      log(`model ${spec}: ERROR ${error.message}`);
      models.push({ id: spec, error: error.message, cases: {} });
    }
  }
  const after = await sampleBusy(1000);
  const foreign = bench.foreign.map((f) => f.foreignCpu);
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
      versions: { ...bench.versions, node: process.version },
      git,
      build,
      load: {
        before,
        after,
        busy,
        meanForeignCpu: meanForeign,
        maxForeignCpu: maxForeign,
        perWorker: bench.foreign,
        verdict: busy
          ? `BUSY: other processes used ${(meanForeign * 100).toFixed(0)}% of the CPUs on average during the measurements (max ${(maxForeign * 100).toFixed(0)}%, ${(before.busyFraction * 100).toFixed(0)}% before the start); absolute times are noisy, re-run on a quiet machine`
          : `quiet: other processes used ${(meanForeign * 100).toFixed(1)}% of the CPUs on average during the measurements (max ${(maxForeign * 100).toFixed(0)}%)`,
      },
      note: opts.note,
    },
    models,
  };
  fs.mkdirSync(opts.out, { recursive: true });
  const written = await writeReport(results, opts);
  fs.rmSync(bench.tmp, { recursive: true, force: true });
  log(`machine load: ${results.meta.load.verdict}`);
  for (const f of written) log(`wrote ${path.relative(process.cwd(), f)}`);
}

main().catch((error) => {
  process.stderr.write(`bench: ${error.stack || error}\n`);
  process.exit(1);
});
