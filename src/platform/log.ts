/** Structured JSON logs (pino) with secrets redacted wherever they might appear. */
import { pino, type Logger, type DestinationStream } from 'pino';

/** Paths that can carry secrets; their values are replaced before a line is written. */
export const REDACT_PATHS = [
  'password',
  'token',
  'apiToken',
  'secret',
  'masterKey',
  'databaseUrl',
  'connectionString',
  '*.password',
  '*.token',
  '*.apiToken',
  '*.secret',
  '*.databaseUrl',
  '*.connectionString',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
];

export function createLogger(options: { level: string; destination?: DestinationStream; base?: Record<string, unknown> }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'taskflow', ...options.base },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
