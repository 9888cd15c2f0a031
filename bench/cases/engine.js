'use strict';
// Case engine: our engine against openvino_genai on the same text-to-image generation, its parts, load+compile
// (no cache, filling CACHE_DIR, warm CACHE_DIR) and memory.
const fs = require('fs');
const path = require('path');
const { summarize } = require('../lib/stats');
const { generationFigures, firstEvent, row, pairRatioRow } = require('../lib/figures');
const { log } = require('../lib/log');

async function run(session, m) {
  const o = session.opts;
  const rows = [];
  const res = { ours: await session.t2i(m, 'ours') };
  if (session.oracleOk) res.oracle = await session.t2i(m, 'oracle');
  const ours = generationFigures(res.ours, 't2i');
  const oracle = res.oracle ? generationFigures(res.oracle, 't2i') : null;

  // Load + compile: no compile cache, first load with an empty CACHE_DIR (fills it), then warm from it.
  const loads = {};
  for (const side of session.oracleOk ? ['ours', 'oracle'] : ['ours']) {
    const kind = side === 'ours' ? 'engine' : 'oracle';
    const cacheDir = path.join(session.tmp, `cache-${m.id}-${side}`);
    fs.rmSync(cacheDir, { recursive: true, force: true });
    const l = { cold: [], fill: [], warm: [], coldPeak: [], warmPeak: [] };
    for (let i = 0; i < o.repeat; i += 1) {
      const r = await session.worker(kind, session.baseSpec(m, { runs: [] }), `${m.id} · load (no cache) ${i + 1}/${o.repeat} · ${side}`);
      const e = firstEvent(r, 'load');
      if (e) {
        l.cold.push(e.wallMs);
        l.coldPeak.push(firstEvent(r, 'end')?.hwmMiB);
      }
    }
    const spec = session.baseSpec(m, { runs: [] });
    spec.properties.CACHE_DIR = cacheDir;
    const fill = await session.worker(kind, spec, `${m.id} · load (filling CACHE_DIR) · ${side}`);
    if (firstEvent(fill, 'load')) l.fill.push(firstEvent(fill, 'load').wallMs);
    for (let i = 0; i < o.repeat; i += 1) {
      const r = await session.worker(kind, spec, `${m.id} · load (warm CACHE_DIR) ${i + 1}/${o.repeat} · ${side}`);
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

module.exports = {
  section: 1,
  title: 'Engine vs openvino_genai (same model, size, steps, guidance, seed, threads)',
  description: 'engine vs openvino_genai: generate(), per step, text encode, VAE decode, load+compile cold/warm, peak RSS',
  run,
};
