// Download progress: a redrawn bar on a terminal, plain log lines otherwise.
import type { Logger } from '../server/log';

export interface Progress {
  start(totalBytes: number, files: number): void;
  advance(bytes: number): void;
  fileDone(name: string, bytes: number): void;
  finish(): void;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function createProgress(logger: Logger, label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  let total = 0;
  let done = 0;
  let files = 0;
  let filesDone = 0;
  let lastDraw = 0;
  let lastLoggedPercent = -1;
  const startedAt = Date.now();
  const tty = Boolean(stream.isTTY);
  const percent = () => (total ? Math.floor((done / total) * 100) : 100);

  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const width = 30;
    const filled = Math.round((percent() / 100) * width);
    const rate = done / Math.max(0.001, (now - startedAt) / 1000);
    stream.write(
      `\r${label} [${'='.repeat(filled)}${' '.repeat(width - filled)}] ${String(percent()).padStart(3)}% ` +
        `${formatBytes(done)}/${formatBytes(total)} ${formatBytes(rate)}/s ${filesDone}/${files} files\x1b[K`,
    );
  };

  return {
    start(totalBytes, fileCount) {
      total = totalBytes;
      files = fileCount;
      if (!tty) logger.info(`${label}: ${fileCount} files, ${formatBytes(totalBytes)} to download`);
    },
    advance(bytes) {
      done += bytes;
      if (tty) draw();
      else if (percent() >= lastLoggedPercent + 10 && percent() < 100) {
        lastLoggedPercent = percent() - (percent() % 10);
        logger.info(`${label}: ${lastLoggedPercent}% (${formatBytes(done)}/${formatBytes(total)})`);
      }
    },
    fileDone(name, bytes) {
      filesDone += 1;
      if (tty) draw(true);
      else logger.debug(`${label}: ${name} (${formatBytes(bytes)}) done, ${filesDone}/${files} files`);
    },
    finish() {
      if (tty) {
        draw(true);
        stream.write('\n');
      }
      logger.info(`${label}: done, ${formatBytes(done)} in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    },
  };
}
