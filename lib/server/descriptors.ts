// Connections the process cannot accept. Out of file descriptors (EMFILE, ENFILE), libuv accepts each waiting
// connection and closes it at once, so its client sees the connection closed without an answer, and nothing reaches
// JavaScript: no error, no log line. So the descriptors are watched instead: every few seconds the open ones are
// counted (/proc/self/fd) against the limit and a warning is logged (at most once a minute) from 90 % of the limit on;
// /metrics reports both through prom-client's process metrics (ov_diffusion_process_open_fds, _max_fds).
// Other accept errors, which Node does report as 'error' events on the server, are logged and counted.
import * as fs from 'fs';
import type * as http from 'http';
import type { Logger } from './log';
import type { ServerMetrics } from './metrics';

/** The process's open-file limit (soft), or undefined where /proc is not there. */
export function descriptorLimit(): number | undefined {
  try {
    const limit = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'))?.[1];
    return limit === undefined || limit === 'unlimited' ? undefined : Number(limit);
  } catch {
    return undefined;
  }
}

/** Open file descriptors of this process; undefined when they cannot be counted (e.g. none is left to read them). */
export function openDescriptors(): number | undefined {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

export function watchDescriptors(
  server: http.Server,
  logger: Logger,
  metrics: ServerMetrics,
  { everyMs = 5_000, warnEveryMs = 60_000 } = {},
): void {
  const limit = descriptorLimit();
  const advice = "raise the limit (ulimit -n, or the container's nofile limit) or lower the number of open connections";
  let warnedAt = -Infinity;
  const check = () => {
    const open = openDescriptors();
    const full = open === undefined ? limit !== undefined : limit !== undefined && open >= 0.9 * limit;
    if (!full || Date.now() - warnedAt < warnEveryMs) return;
    warnedAt = Date.now();
    logger.warn(
      `${open ?? 'all'} of ${limit} file descriptors are open: at the limit, new connections are closed without an answer; ${advice}`,
    );
  };
  const timer = setInterval(check, everyMs);
  timer.unref();
  server.once('close', () => clearInterval(timer));
  server.on('error', (error: NodeJS.ErrnoException) => {
    metrics.acceptError(error.code ?? 'unknown');
    logger.error(`cannot accept a connection (${error.message})${/^E[MN]FILE$/.test(error.code ?? '') ? `; ${advice}` : ''}`);
  });
}
