// Leveled logging to stderr, with OVMS's level names.
export const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARNING', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const ORDER: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARNING: 3, ERROR: 4 };

export interface Logger {
  level: LogLevel;
  trace(message: string): void;
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function createLogger(
  level: LogLevel = 'INFO',
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Logger {
  const at = (wanted: LogLevel) => (message: string) => {
    if (ORDER[wanted] >= ORDER[logger.level]) write(`[${new Date().toISOString()}][${wanted.toLowerCase()}] ${message}`);
  };
  const logger: Logger = { level, trace: at('TRACE'), debug: at('DEBUG'), info: at('INFO'), warn: at('WARNING'), error: at('ERROR') };
  return logger;
}

export const silentLogger = (): Logger => createLogger('ERROR', () => undefined);
