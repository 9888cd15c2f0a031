'use strict';
// A bench session: what the cases share. Starting workers (one process per measurement), the text-to-image runs
// every case reuses (ours and openvino_genai, paired ABBA when both fit in memory), the server the server cases
// share, and running the selected cases on one model.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { cpuTimes, memAvailableMiB } = require('./machine');
const { runWorker, startInteractive, startServer, foreignCpuShare, ROOT } = require('./workers');
const { request, startProbe } = require('./http');
const { percentiles } = require('./stats');
const { firstEvent } = require('./figures');
const { resolveModel, modelDefaults, dirBytes } = require('./models');
const { log, fmtMs, progress } = require('./log');

class Session {
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

  async ensureServer(m) {
    if (m.server !== undefined) return m.server;
    log(`${m.id} · server: starting the server (dist/launcher/main.js) with this model`);
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

  /** Runs the selected cases of `registry` ({name: case module}, in the order they run) on the model `spec`. */
  async runModel(spec, registry) {
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
    const order = Object.keys(registry).filter((c) => o.cases.includes(c));
    for (const c of order) {
      const started = Date.now();
      log(`--- ${m.id} · case ${c}: ${registry[c].description}`);
      try {
        out.cases[c] = await registry[c].run(this, m);
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

module.exports = { Session };
