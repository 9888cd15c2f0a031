'use strict';
// Case server: what the HTTP server adds to the library call it makes, PNG and JPEG, streamed and not.
const { summarize } = require('../lib/stats');
const { request } = require('../lib/http');
const { generationFigures, single, row } = require('../lib/figures');
const { log, fmtMs } = require('../lib/log');

async function run(session, m) {
  const o = session.opts;
  const server = await session.ensureServer(m);
  if (!server.ok) return { status: 'skipped', note: `server not available: ${server.error}` };
  const rows = [];
  const result = { status: 'ok', rows, formats: {} };
  for (let i = 0; i < o.warmup; i += 1) {
    const r = await session.timedGeneration(m, server, { output_format: 'png' });
    log(`${m.id} · server: warm-up request ${r.status === 200 ? fmtMs(r.httpMs) : `failed ${r.status} ${r.error}`}`);
    if (r.status !== 200) return { status: 'error', note: `generation request failed: ${r.status} ${r.error}` };
  }
  const v = (label, s, unit = 'ms') => ({ label, s, unit });
  for (const format of ['png', 'jpeg']) {
    const samples = [];
    for (let i = 0; i < o.repeat; i += 1) {
      const r = await session.timedGeneration(m, server, { output_format: format });
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
    body: session.generationBody(m, { stream: true, num_inference_steps: 1 }),
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
          body: session.generationBody(m, { stream: true, ...extra }),
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

module.exports = {
  section: 3,
  title: 'Server overhead (/v3/images/generations vs the library call it makes)',
  description: 'HTTP /v3/images/generations latency minus the library call, PNG and JPEG, stream',
  run,
};
