'use strict';
// Starting bench workers (one child process per measurement) and reading their JSON-lines events.
const { spawn } = require('child_process');
const path = require('path');
const { cpuTimes } = require('./machine');

const ROOT = path.resolve(__dirname, '..', '..');
const MARK = '@@BENCH ';
const ORACLE_PYTHON = process.env.OV_DIFFUSION_ORACLE_PYTHON || path.join(ROOT, '.cache', 'oracle-venv', 'bin', 'python');
const CLK_TCK = 100; // USER_HZ on Linux

function commandFor(kind) {
  if (kind === 'engine') return [process.execPath, [path.join(ROOT, 'bench', 'workers', 'engine.js')]];
  if (kind === 'oracle') return [ORACLE_PYTHON, [path.join(ROOT, 'bench', 'workers', 'oracle.py')]];
  throw new Error(`unknown worker kind ${kind}`);
}

/**
 * Reads a worker's stdout/stderr as lines: '@@BENCH {json}' lines are events, passed to onEvent; other lines are
 * kept (the last 200) in `log` for error messages and echoed with `verbose`. Returns flush(), for the partial
 * last lines when the child closes.
 */
function readEvents(child, { onEvent, log, verbose }) {
  const onLine = (line, stream) => {
    if (line.startsWith(MARK)) {
      let event;
      try {
        event = JSON.parse(line.slice(MARK.length));
      } catch {
        log.push(line);
        return;
      }
      onEvent(event);
    } else if (line.trim()) {
      log.push(`${stream}: ${line}`);
      if (log.length > 200) log.shift();
      if (verbose) process.stderr.write(`    | ${line}\n`);
    }
  };
  const buffers = { out: '', err: '' };
  const reader = (stream) => (chunk) => {
    buffers[stream] += chunk.toString();
    let i;
    while ((i = buffers[stream].indexOf('\n')) >= 0) {
      const line = buffers[stream].slice(0, i);
      buffers[stream] = buffers[stream].slice(i + 1);
      onLine(line, stream);
    }
  };
  child.stdout.on('data', reader('out'));
  child.stderr.on('data', reader('err'));
  return () => {
    for (const stream of ['out', 'err'])
      if (buffers[stream]) {
        onLine(buffers[stream], stream);
        buffers[stream] = '';
      }
  };
}

/**
 * The fraction of the machine's CPU time that OTHER processes used between two cpuTimes() samples (noise
 * indicator): all busy time minus the workers' own CPU time and this process's.
 */
function foreignCpuShare(before, after, workersCpuMs, selfUsage) {
  const totalMs = ((after.total - before.total) * 1000) / CLK_TCK;
  const busyMs = ((after.busy - before.busy) * 1000) / CLK_TCK;
  const selfMs = (selfUsage.user + selfUsage.system) / 1000;
  return totalMs > 0 ? Math.max(0, Math.min(1, (busyMs - workersCpuMs - selfMs) / totalMs)) : undefined;
}

/**
 * Runs one worker to completion with `spec` on stdin. Resolves to { events, ok, error, foreignCpu, log }.
 * foreignCpu: the fraction of the machine's CPU time used by OTHER processes while the worker ran (noise indicator).
 */
function runWorker(kind, spec, { onEvent, verbose, env } = {}) {
  const [cmd, args] = commandFor(kind);
  return new Promise((resolve) => {
    const before = cpuTimes();
    const selfBefore = process.cpuUsage();
    const child = spawn(cmd, args, {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1', TOKENIZERS_PARALLELISM: 'false', ...(env || {}) },
    });
    const events = [];
    const log = [];
    const flush = readEvents(child, {
      log,
      verbose,
      onEvent: (event) => {
        events.push(event);
        if (onEvent) onEvent(event);
      },
    });
    child.on('error', (error) => resolve({ events, ok: false, error: `cannot start ${cmd}: ${error.message}`, log }));
    child.on('close', (code, signal) => {
      flush();
      const end = events.find((e) => e.event === 'end');
      const failed = events.find((e) => e.event === 'error');
      const foreignCpu =
        end && Number.isFinite(end.cpuMs) ? foreignCpuShare(before, cpuTimes(), end.cpuMs, process.cpuUsage(selfBefore)) : undefined;
      const ok = code === 0 && !failed && Boolean(end);
      resolve({
        events,
        ok,
        foreignCpu,
        log,
        error: ok
          ? undefined
          : failed
            ? failed.message
            : `${kind} worker exited with ${signal || `code ${code}`}: ${log.slice(-8).join(' / ')}`,
      });
    });
    child.stdin.end(JSON.stringify(spec));
  });
}

/**
 * Starts an interactive engine/oracle worker (spec.interactive): resolves once the model is loaded (or the worker
 * failed). handle.run(run) executes one run and resolves with its 'run' events; handle.quit() ends the worker and
 * resolves like runWorker (events, ok, error, foreignCpu).
 */
function startInteractive(kind, spec, { onEvent, verbose } = {}) {
  const [cmd, args] = commandFor(kind);
  return new Promise((resolveStart) => {
    const before = cpuTimes();
    const child = spawn(cmd, args, {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1', TOKENIZERS_PARALLELISM: 'false' },
    });
    const events = [];
    const log = [];
    let pending = null; // { runs: [], resolve }
    let started = false;
    let closed;
    const closedPromise = new Promise((r) => {
      closed = r;
    });
    readEvents(child, {
      log,
      verbose,
      onEvent: (event) => {
        events.push(event);
        if (onEvent) onEvent(event);
        if (event.event === 'load' && !started) {
          started = true;
          resolveStart({ ok: true, handle });
        }
        if (event.event === 'run' && pending) pending.runs.push(event);
        if (event.event === 'idle' && pending) {
          const p = pending;
          pending = null;
          p.resolve(p.runs);
        }
        if (event.event === 'error') {
          if (!started) {
            started = true;
            resolveStart({ ok: false, error: event.message, handle });
          }
          if (pending) {
            const p = pending;
            pending = null;
            p.resolve(null);
          }
        }
      },
    });
    child.on('close', (code, signal) => {
      closed({ code, signal });
      if (!started) {
        started = true;
        resolveStart({ ok: false, error: `${kind} worker exited with ${signal || `code ${code}`}: ${log.slice(-8).join(' / ')}`, handle });
      }
      if (pending) {
        const p = pending;
        pending = null;
        p.resolve(null);
      }
    });
    const handle = {
      events,
      run(run) {
        return new Promise((resolve) => {
          if (child.exitCode !== null) {
            resolve(null);
            return;
          }
          pending = { runs: [], resolve };
          child.stdin.write(`${JSON.stringify({ run })}\n`);
        });
      },
      async quit() {
        const selfBefore = process.cpuUsage();
        if (child.exitCode === null) child.stdin.end(`${JSON.stringify({ quit: true })}\n`);
        const { code, signal } = await closedPromise;
        const end = events.find((e) => e.event === 'end');
        const failed = events.find((e) => e.event === 'error');
        const foreignCpu =
          end && Number.isFinite(end.cpuMs) ? foreignCpuShare(before, cpuTimes(), end.cpuMs, process.cpuUsage(selfBefore)) : undefined;
        const ok = code === 0 && !failed && Boolean(end);
        return {
          events,
          ok,
          foreignCpu,
          log,
          error: ok ? undefined : failed ? failed.message : `${kind} worker exited with ${signal || `code ${code}`}`,
        };
      },
    };
    child.stdin.write(`${JSON.stringify({ ...spec, interactive: true })}\n`);
  });
}

/** Starts the server worker; resolves when it serves (or failed). Returns a handle to read events and stop it. */
function startServer(spec, { onEvent, verbose } = {}) {
  return new Promise((resolve) => {
    const before = cpuTimes();
    const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'workers', 'server.js'), JSON.stringify(spec)], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const events = [];
    const waiters = [];
    const log = [];
    let settled = false;
    const handle = {
      child,
      events,
      log,
      url: undefined,
      /** Resolves with the next event of this type (already queued ones first). */
      next(type, timeoutMs = 0) {
        const index = events.findIndex((e) => e.event === type && !e.taken);
        if (index >= 0) {
          events[index].taken = true;
          return Promise.resolve(events[index]);
        }
        return new Promise((res, rej) => {
          const waiter = { type, res };
          waiters.push(waiter);
          if (timeoutMs) {
            setTimeout(() => {
              const i = waiters.indexOf(waiter);
              if (i >= 0) {
                waiters.splice(i, 1);
                rej(new Error(`no ${type} event in ${timeoutMs} ms`));
              }
            }, timeoutMs).unref();
          }
        });
      },
      memory() {
        child.stdin.write('memory\n');
        return handle.next('memory', 10000);
      },
      async stop() {
        const selfBefore = process.cpuUsage();
        child.stdin.write('quit\n');
        const end = await handle.next('end', 60000).catch(() => undefined);
        await new Promise((r) => {
          if (child.exitCode !== null) r();
          else child.on('close', r);
        });
        if (end && Number.isFinite(end.cpuMs))
          handle.foreignCpu = foreignCpuShare(before, cpuTimes(), end.cpuMs, process.cpuUsage(selfBefore));
        return end;
      },
    };
    readEvents(child, {
      log,
      verbose,
      onEvent: (event) => {
        const waiter = waiters.find((w) => w.type === event.event);
        if (waiter) {
          waiters.splice(waiters.indexOf(waiter), 1);
          event.taken = true;
          waiter.res(event);
        }
        events.push(event);
        if (onEvent) onEvent(event);
        if (!settled && event.event === 'ready') {
          settled = true;
          handle.url = event.url;
          resolve({ ok: true, handle });
        }
        if (!settled && (event.event === 'error' || event.event === 'unavailable')) {
          settled = true;
          resolve({ ok: false, unavailable: event.event === 'unavailable', error: event.message, handle });
        }
      },
    });
    child.on('close', (code) => {
      if (!settled) {
        settled = true;
        resolve({ ok: false, error: `server worker exited with code ${code}: ${log.slice(-8).join(' / ')}`, handle });
      }
    });
  });
}

module.exports = { runWorker, startInteractive, startServer, foreignCpuShare, ORACLE_PYTHON, ROOT };
