'use strict';
// Bench worker for the server: starts the real server (dist/launcher/main.js, same code path as bin/ov-diffusion.js)
// in this process, with one model, and reports the time of every library call it makes (DiffusionModel
// .text2image/.image2image/.inpaint, wrapped here without changing the server), so that the orchestrator can
// subtract each request's own library time from its HTTP latency.
//
// argv[2]: JSON {model, properties, maxConcurrency, logLevel}. Prints @@BENCH {event:'ready', url} when it serves.
const path = require('path');
const { emit, memory } = require('./common');

const ROOT = path.resolve(__dirname, '..', '..');

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const { DiffusionModel } = require(path.join(ROOT, 'dist', 'diffusion-model.js'));
  let serial = 0;
  for (const method of ['text2image', 'image2image', 'inpaint']) {
    const original = DiffusionModel.prototype[method];
    DiffusionModel.prototype[method] = async function timed(...args) {
      const id = (serial += 1);
      const start = performance.now();
      const result = await original.apply(this, args);
      emit({
        event: 'libcall',
        id,
        method,
        ms: performance.now() - start,
        engineMs: result.metrics.totalMs,
        queueMs: result.metrics.queueMs,
      });
      return result;
    };
  }
  let server;
  try {
    server = require(path.join(ROOT, 'dist', 'launcher', 'main.js'));
  } catch (error) {
    emit({ event: 'unavailable', message: `the server is not built (${error.message})` });
    return;
  }
  const argv = [
    '--rest_port',
    '0',
    '--rest_bind_address',
    '127.0.0.1',
    '--model_name',
    'bench',
    '--model_path',
    spec.model,
    '--log_level',
    spec.logLevel || 'WARNING',
    '--max_concurrency',
    String(spec.maxConcurrency || 1),
    '--max_num_inference_steps',
    '1000',
  ];
  if (spec.properties && Object.keys(spec.properties).length) argv.push('--plugin_config', JSON.stringify(spec.properties));
  const running = await server.main(argv);
  if (!running) {
    emit({ event: 'error', message: `the server did not start (exit code ${process.exitCode})` });
    process.exit(1);
  }
  emit({ event: 'ready', url: running.url, ...memory() });
  process.on('message', () => {});
  process.stdin.on('data', (chunk) => {
    const text = chunk.toString();
    if (text.includes('memory')) emit({ event: 'memory', ...memory() });
    if (text.includes('quit'))
      running.close().then(() => {
        const cpu = process.cpuUsage();
        emit({ event: 'end', cpuMs: (cpu.user + cpu.system) / 1000, ...memory() });
        process.exit(0);
      });
  });
}

main().catch((error) => {
  emit({ event: 'error', message: error && error.message ? error.message : String(error) });
  process.exit(1);
});
