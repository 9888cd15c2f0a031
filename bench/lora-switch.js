#!/usr/bin/env node
'use strict';
// LoRA switching cost and adapter memory (issue 5):
//   node bench/lora-switch.js [--model dir] [--adapters a.safetensors,b.safetensors] [--steps N] [--size WxH] [--repeat K]
//                             [--no-baseline] [--out file.json]
//
// Timing, in this process, on one model loaded with adapters a and b: each cycle runs the calls
//   a  b  b  a  a@0.5  a  none  none  a
// so that every timed call is labelled by the transition from the call before it on the same
// requests: "same" (a->a, b->b: the states already hold the set, nothing is set), "switch" (a->b,
// b->a: same ranks, new values), "alpha" (a->a@0.5->a: same factors, new alpha), "off" (a->none:
// every layer back to a zero rank-1 state), "none" (none->none) and "on" (none->a). Categories are
// interleaved within each cycle, so drift and the load of other jobs spread over all of them; the
// per-cycle ratio to "same" is reported besides the medians. Unless --no-baseline, the same model
// loaded without adapters runs once per cycle too ("unadapted": the cost of the LoRA branches).
// metrics.adapterApplyMs is the engine's time setting the states (0 when they were already set); "1st step
// extra" is a call's first denoiser inference minus the median of its later ones, which shows what a state
// change costs the next inference without the drift between calls.
//
// Memory, in child processes run one after the other: VmRSS/VmHWM (/proc/self/status) after loading
// without adapters, after loading with a and b registered, after a call with a, after switching to b
// and after a call with both.
//
// Without --model: test/fixtures/sdxl with test/fixtures/loras/sdxl-kohya-{a,b} (tiny: fixed costs
// dominate). With --model and no --adapters (e.g. --model .cache/bench-models/sd15-int8-random),
// two rank-8 kohya LoRAs for the attention layers of its UNet and text encoder(s) are written to
// .cache/bench-loras/ from the folder's configs (deterministic random f16 weights).
// Writes a markdown table to stdout and JSON to bench/results/lora-switch.json (or --out).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const { DiffusionModel } = require(ROOT);
const { prng } = require('./lib/prng');

function parseArgs(argv) {
  const args = { repeat: 5, steps: 4, baseline: true };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') args.model = path.resolve(value());
    else if (a === '--adapters')
      args.adapters = value()
        .split(',')
        .map((p) => path.resolve(p));
    else if (a === '--steps') args.steps = Number(value());
    else if (a === '--repeat') args.repeat = Number(value());
    else if (a === '--size') {
      const m = /^(\d+)x(\d+)$/.exec(value());
      if (!m) throw new Error('--size is WxH, e.g. 512x512');
      args.width = Number(m[1]);
      args.height = Number(m[2]);
    } else if (a === '--no-baseline') args.baseline = false;
    else if (a === '--out') args.out = path.resolve(value());
    else if (a === '--child-memory') args.childMemory = value();
    else if (a === '--help' || a === '-h') {
      console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 8).join('\n'));
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(args.repeat) || args.repeat < 1) throw new Error('--repeat must be a positive integer');
  if (!Number.isInteger(args.steps) || args.steps < 1) throw new Error('--steps must be a positive integer');
  return args;
}

// ---- /proc memory ---------------------------------------------------------------------------------

function memory() {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (field) => Number((new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status) || [])[1]);
  return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 };
}

// ---- random kohya LoRA for a diffusers model folder ---------------------------------------------------

function float32ToFloat16(value) {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign; // below f16's normal range: flushed to zero (a negligible part of a LoRA factor)
  let e = exp;
  let m = Math.round(mant / 0x2000);
  if (m === 0x400) {
    m = 0;
    e += 1;
  }
  return e >= 31 ? sign | 0x7c00 : sign | (e << 10) | m;
}

/** A seeded normal generator (mulberry32 + Box-Muller). */
function gaussian(seed) {
  const uniform = prng(seed).next;
  return () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

/** [name, in, out] of the attention projections of a diffusers UNet2DConditionModel config and CLIP text encoders. */
function attentionLayers(modelDir) {
  const json = (p) => JSON.parse(fs.readFileSync(path.join(modelDir, p), 'utf8'));
  const unet = json('unet/config.json');
  const layers = [];
  const perBlock = (value, i) => (Array.isArray(value) ? value[i] : (value ?? 1));
  const attention = (prefix, channels, depth) => {
    for (let t = 0; t < depth; t += 1) {
      const block = `${prefix}_transformer_blocks_${t}`;
      for (const proj of ['to_q', 'to_k', 'to_v', 'to_out_0']) layers.push([`${block}_attn1_${proj}`, channels, channels]);
      layers.push([`${block}_attn2_to_q`, channels, channels]);
      layers.push([`${block}_attn2_to_k`, unet.cross_attention_dim, channels]);
      layers.push([`${block}_attn2_to_v`, unet.cross_attention_dim, channels]);
      layers.push([`${block}_attn2_to_out_0`, channels, channels]);
    }
  };
  const channels = unet.block_out_channels;
  unet.down_block_types.forEach((type, i) => {
    if (!type.startsWith('CrossAttn')) return;
    for (let j = 0; j < unet.layers_per_block; j += 1)
      attention(`lora_unet_down_blocks_${i}_attentions_${j}`, channels[i], perBlock(unet.transformer_layers_per_block, i));
  });
  if ((unet.mid_block_type ?? 'UNetMidBlock2DCrossAttn') === 'UNetMidBlock2DCrossAttn')
    attention(
      'lora_unet_mid_block_attentions_0',
      channels[channels.length - 1],
      perBlock(unet.transformer_layers_per_block, channels.length - 1),
    );
  const reversed = [...channels].reverse();
  unet.up_block_types.forEach((type, i) => {
    if (!type.startsWith('CrossAttn')) return;
    const depth = perBlock(
      unet.reverse_transformer_layers_per_block ??
        (Array.isArray(unet.transformer_layers_per_block)
          ? [...unet.transformer_layers_per_block].reverse()
          : unet.transformer_layers_per_block),
      i,
    );
    for (let j = 0; j <= unet.layers_per_block; j += 1) attention(`lora_unet_up_blocks_${i}_attentions_${j}`, reversed[i], depth);
  });
  const encoders = fs.existsSync(path.join(modelDir, 'text_encoder_2'))
    ? [
        ['text_encoder', 'lora_te1'],
        ['text_encoder_2', 'lora_te2'],
      ]
    : [['text_encoder', 'lora_te']];
  for (const [dir, prefix] of encoders) {
    if (!fs.existsSync(path.join(modelDir, dir, 'config.json'))) continue;
    const te = json(`${dir}/config.json`);
    for (let l = 0; l < te.num_hidden_layers; l += 1)
      for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj'])
        layers.push([`${prefix}_text_model_encoder_layers_${l}_self_attn_${proj}`, te.hidden_size, te.hidden_size]);
  }
  return layers;
}

function writeSafetensors(file, tensors) {
  const header = { __metadata__: { format: 'pt', generator: 'bench/lora-switch.js' } };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.data.byteLength;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const fd = fs.openSync(`${file}.tmp`, 'w');
  fs.writeSync(fd, length);
  fs.writeSync(fd, Buffer.from(json));
  for (const t of tensors) fs.writeSync(fd, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  fs.closeSync(fd);
  fs.renameSync(`${file}.tmp`, file);
}

/** Writes (once) a rank-`rank` kohya LoRA with random f16 factors for the model's attention layers. */
function randomLora(modelDir, tag, seed, rank = 8) {
  const dir = path.join(ROOT, '.cache', 'bench-loras');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${path.basename(modelDir)}-rank${rank}-${tag}.safetensors`);
  if (fs.existsSync(file)) return file;
  const normal = gaussian(seed);
  const tensors = [];
  const f16 = (count, scale) => {
    const out = new Uint16Array(count);
    for (let i = 0; i < count; i += 1) out[i] = float32ToFloat16(normal() * scale);
    return out;
  };
  for (const [name, inDim, outDim] of attentionLayers(modelDir)) {
    // Scaled so that B A x stays a modest fraction of the layer's output, as a trained LoRA's.
    tensors.push({ name: `${name}.alpha`, dtype: 'F32', shape: [], data: new Float32Array([rank]) });
    tensors.push({ name: `${name}.lora_down.weight`, dtype: 'F16', shape: [rank, inDim], data: f16(rank * inDim, 1 / Math.sqrt(inDim)) });
    tensors.push({ name: `${name}.lora_up.weight`, dtype: 'F16', shape: [outDim, rank], data: f16(outDim * rank, 0.05 / Math.sqrt(rank)) });
  }
  writeSafetensors(file, tensors);
  return file;
}

function loraParameters(file) {
  const bytes = fs.readFileSync(file);
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString());
  let count = 0;
  let pairs = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__' || name.endsWith('.alpha')) continue;
    count += t.shape.reduce((x, y) => x * y, 1);
    if (/lora_down|lora_A/.test(name)) pairs += 1;
  }
  return { fileMB: bytes.length / 2 ** 20, parameters: count, pairs };
}

// ---- statistics ---------------------------------------------------------------------------------

function quantile(values, q) {
  const s = [...values].sort((x, y) => x - y);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (pos - lo);
}
const median = (v) => quantile(v, 0.5);
const fmt = (x, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

// ---- memory child ---------------------------------------------------------------------------------

async function childMemory(args) {
  const spec = JSON.parse(args.childMemory);
  const out = { start: memory() };
  const adapters = spec.adapters ? { a: spec.adapters[0], b: spec.adapters[1] } : undefined;
  const model = await DiffusionModel.load(spec.model, { adapters });
  out.loaded = memory();
  const run = (sel) => model.text2image('a photo of a cat', { ...spec.call, adapters: sel });
  await run(undefined);
  out.afterBaseCall = memory();
  if (adapters) {
    await run('a');
    out.afterAdapterCall = memory();
    await run('b');
    out.afterSwitch = memory();
    await run(['a', 'b']);
    out.afterBothCall = memory();
  }
  model.dispose();
  process.stdout.write(JSON.stringify(out));
}

function measureMemory(spec) {
  const stdout = execFileSync(process.execPath, [__filename, '--child-memory', JSON.stringify(spec)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout);
}

// ---- timing ---------------------------------------------------------------------------------------

// [selection, category]: the category names the transition from the previous call on the adapted model.
const CYCLE = [
  ['a', 'same'],
  ['b', 'switch'],
  ['b', 'same'],
  ['a', 'switch'],
  [{ a: 0.5 }, 'alpha'],
  ['a', 'alpha'],
  [[], 'off'],
  [[], 'none'],
  ['a', 'on'],
];
const CATEGORIES = {
  same: 'same adapter set as the previous call (a->a, b->b)',
  switch: 'switch adapter (a->b, b->a, same rank)',
  alpha: 'same adapter, new alpha (a->a@0.5->a)',
  on: 'adapter on (none->a)',
  off: 'adapter off (a->none)',
  none: 'no adapter, as the previous call',
  unadapted: 'model loaded without adapters',
};

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.childMemory) return childMemory(args);
  const fixtureDefault = !args.model;
  const model = args.model ?? path.join(ROOT, 'test/fixtures/sdxl');
  let adapters = args.adapters;
  if (!adapters)
    adapters = fixtureDefault
      ? ['a', 'b'].map((t) => path.join(ROOT, `test/fixtures/loras/sdxl-kohya-${t}.safetensors`))
      : [randomLora(model, 'a', 1), randomLora(model, 'b', 2)];
  if (adapters.length !== 2) throw new Error('--adapters takes two files: a.safetensors,b.safetensors');
  const call = { numInferenceSteps: args.steps, seed: 42 };
  if (args.width) Object.assign(call, { width: args.width, height: args.height });
  const loadStart = os.loadavg();

  // Memory first, in fresh processes, before this one allocates anything.
  const memBase = measureMemory({ model, call });
  const memAdapters = measureMemory({ model, adapters, call });

  const adapted = await DiffusionModel.load(model, { adapters: { a: adapters[0], b: adapters[1] } });
  const report = adapted.adapters;
  for (const r of report)
    if (r.unmatchedKeys.length)
      console.warn(`warning: adapter ${r.name}: ${r.unmatchedKeys.length} keys found no layer (${r.unmatchedKeys[0]}, ...)`);
  const plain = args.baseline ? await DiffusionModel.load(model) : null;

  const samples = Object.fromEntries(Object.keys(CATEGORIES).map((c) => [c, []]));
  const cycles = [];
  const timed = async (target, selection) => {
    const start = performance.now();
    const result = await target.text2image('a photo of a cat', { ...call, adapters: selection });
    const m = result.metrics;
    const rest = m.denoiserMs.slice(1);
    return {
      wallMs: performance.now() - start,
      applyMs: m.adapterApplyMs ?? NaN,
      denoiserMs: m.denoiserMs.reduce((x, y) => x + y, 0),
      totalMs: m.totalMs,
      // The first denoiser call against the median of the others in the same call: what a state change costs
      // the first inference after it, free of the drift between calls.
      firstStepExtraMs: rest.length ? m.denoiserMs[0] - median(rest) : NaN,
    };
  };
  // Warm-up: every request and state shape used below has run once.
  await adapted.text2image('a photo of a cat', { ...call, adapters: ['a', 'b'] });
  for (const [selection] of CYCLE) await timed(adapted, selection);
  if (plain) await timed(plain, undefined);
  for (let k = 0; k < args.repeat; k += 1) {
    const cycle = Object.fromEntries(Object.keys(CATEGORIES).map((c) => [c, []]));
    // The unadapted model runs at a rotating position within the cycle.
    const plainAt = k % (CYCLE.length + 1);
    for (let i = 0; i <= CYCLE.length; i += 1) {
      if (i === plainAt) {
        if (plain) cycle.unadapted.push(await timed(plain, undefined));
        continue;
      }
      const [selection, category] = CYCLE[i < plainAt ? i : i - 1];
      cycle[category].push(await timed(adapted, selection));
    }
    for (const [c, list] of Object.entries(cycle)) samples[c].push(...list);
    cycles.push(cycle);
    process.stderr.write(
      `cycle ${k + 1}/${args.repeat} done (load ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')})\n`,
    );
  }
  const loadEnd = os.loadavg();
  adapted.dispose();
  if (plain) plain.dispose();

  const mean = (list, key) => list.reduce((s, x) => s + x[key], 0) / list.length;
  const rows = [];
  for (const [category, label] of Object.entries(CATEGORIES)) {
    const list = samples[category];
    if (!list.length) continue;
    const wall = list.map((x) => x.wallMs);
    // Per cycle: this category's mean wall time over the "same" calls' of the same cycle.
    const ratios = cycles
      .filter((c) => c[category].length && c.same.length)
      .map((c) => mean(c[category], 'wallMs') / mean(c.same, 'wallMs'));
    rows.push({
      category,
      label,
      n: list.length,
      wallMs: {
        median: median(wall),
        p25: quantile(wall, 0.25),
        p75: quantile(wall, 0.75),
        min: Math.min(...wall),
        max: Math.max(...wall),
      },
      vsSame: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) },
      applyMs: { median: median(list.map((x) => x.applyMs)), max: Math.max(...list.map((x) => x.applyMs)) },
      denoiserMs: median(list.map((x) => x.denoiserMs)),
      firstStepExtraMs: {
        median: median(list.map((x) => x.firstStepExtraMs)),
        p25: quantile(
          list.map((x) => x.firstStepExtraMs),
          0.25,
        ),
        p75: quantile(
          list.map((x) => x.firstStepExtraMs),
          0.75,
        ),
      },
      engineMs: median(list.map((x) => x.totalMs)),
    });
  }

  const info = adapters.map((file) => ({ file: path.relative(ROOT, file), ...loraParameters(file) }));
  const result = {
    date: new Date().toISOString(),
    command: `node bench/lora-switch.js ${process.argv.slice(2).join(' ')}`.trim(),
    model: path.relative(ROOT, model) || model,
    adapters: info,
    matchedLayers: report.map((r) => ({ name: r.name, matchedLayers: r.matchedLayers, unmatchedKeys: r.unmatchedKeys.length })),
    call: { ...call, repeat: args.repeat, callsPerCycle: CYCLE.length + (plain ? 1 : 0) },
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, loadAverageStart: loadStart, loadAverageEnd: loadEnd },
    timing: rows,
    memory: { withoutAdapters: memBase, withAdapters: memAdapters },
  };

  const lines = [];
  lines.push(
    `## LoRA switching: ${result.model} (${args.steps} steps${args.width ? `, ${args.width}x${args.height}` : ''}, ${args.repeat} cycles)`,
  );
  lines.push('');
  lines.push(
    `Adapters: ${info.map((a) => `${path.basename(a.file)} (${a.pairs} layers, ${(a.parameters / 1e6).toFixed(2)} M parameters, ${fmt(a.fileMB, 2)} MB)`).join(', ')}; ` +
      `matched layers: ${report.map((r) => `${r.name} ${r.matchedLayers}`).join(', ')}.`,
  );
  lines.push(
    `Load average (1/5/15 min) at start ${loadStart.map((x) => x.toFixed(2)).join(' ')}, at end ${loadEnd.map((x) => x.toFixed(2)).join(' ')}; ${os.cpus().length} CPUs.`,
  );
  lines.push('');
  lines.push(
    '| call | n | wall ms median | p25-p75 | min-max | vs same (per-cycle median, min-max) | adapterApplyMs median (max) | denoiser ms median | 1st step extra ms median (p25..p75) |',
  );
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    lines.push(
      `| ${r.label} | ${r.n} | ${fmt(r.wallMs.median)} | ${fmt(r.wallMs.p25)}-${fmt(r.wallMs.p75)} | ${fmt(r.wallMs.min)}-${fmt(r.wallMs.max)} | ` +
        `${fmt((r.vsSame.median - 1) * 100, 1)}% (${fmt((r.vsSame.min - 1) * 100, 1)}..${fmt((r.vsSame.max - 1) * 100, 1)}%) | ${fmt(r.applyMs.median, 2)} (${fmt(r.applyMs.max, 2)}) | ${fmt(r.denoiserMs)} | ` +
        `${fmt(r.firstStepExtraMs.median)} (${fmt(r.firstStepExtraMs.p25)}..${fmt(r.firstStepExtraMs.p75)}) |`,
    );
  }
  lines.push('');
  const m0 = memBase;
  const m1 = memAdapters;
  const delta = (x) => `${fmt(x.rssMB - m0.loaded.rssMB, 1)}`;
  lines.push('| memory (separate processes) | VmRSS MB | VmHWM MB | RSS vs loaded without adapters, MB |');
  lines.push('| --- | ---: | ---: | ---: |');
  lines.push(`| process start | ${fmt(m0.start.rssMB)} | ${fmt(m0.start.hwmMB)} | |`);
  lines.push(`| loaded, no adapters | ${fmt(m0.loaded.rssMB)} | ${fmt(m0.loaded.hwmMB)} | 0 |`);
  lines.push(
    `| no adapters, after a call | ${fmt(m0.afterBaseCall.rssMB)} | ${fmt(m0.afterBaseCall.hwmMB)} | ${delta(m0.afterBaseCall)} |`,
  );
  lines.push(`| loaded, a and b registered | ${fmt(m1.loaded.rssMB)} | ${fmt(m1.loaded.hwmMB)} | ${delta(m1.loaded)} |`);
  lines.push(
    `| a and b registered, after a call without adapters | ${fmt(m1.afterBaseCall.rssMB)} | ${fmt(m1.afterBaseCall.hwmMB)} | ${delta(m1.afterBaseCall)} |`,
  );
  lines.push(
    `| after the first call with a | ${fmt(m1.afterAdapterCall.rssMB)} | ${fmt(m1.afterAdapterCall.hwmMB)} | ${delta(m1.afterAdapterCall)} |`,
  );
  lines.push(`| after switching to b | ${fmt(m1.afterSwitch.rssMB)} | ${fmt(m1.afterSwitch.hwmMB)} | ${delta(m1.afterSwitch)} |`);
  lines.push(`| after a call with a+b | ${fmt(m1.afterBothCall.rssMB)} | ${fmt(m1.afterBothCall.hwmMB)} | ${delta(m1.afterBothCall)} |`);
  const f32MB = info.reduce((s, a) => s + a.parameters * 4, 0) / 2 ** 20;
  lines.push('');
  lines.push(
    `The two adapters hold ${fmt(f32MB, 2)} MB of factors as f32 (the engine keeps them so); RSS is rounded by the allocator and page granularity.`,
  );
  const markdown = lines.join('\n');
  console.log(markdown);

  const out = args.out ?? path.join(ROOT, 'bench/results/lora-switch.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  let all = {};
  try {
    all = JSON.parse(fs.readFileSync(out, 'utf8'));
  } catch {
    /* new file */
  }
  if (Array.isArray(all) || typeof all !== 'object' || all === null) all = {};
  all[result.model] = { ...result, markdown };
  fs.writeFileSync(out, `${JSON.stringify(all, null, 2)}\n`);
  console.error(`wrote ${path.relative(ROOT, out)} (key "${result.model}")`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
