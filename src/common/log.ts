// The daemon's structured log: pino, one JSON line per event on stderr, with the level the operator chose
// (`--log-level` / SILO_LOG_LEVEL). Each service logs through a child logger that names it (`service: "compute"`), and
// puts what an event is about in fields (`id`, `network`, `err`) rather than in the message.

import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/**
 * The root logger. Writes are synchronous on fd 2: the daemon logs a few lines an hour, and a line written before a
 * crash must not be lost in a buffer. `destination` is for tests (a stream that collects lines).
 */
export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything (library use, unit tests that do not look at logs). */
export const silentLogger = (): Logger => pino({ level: 'silent' });
