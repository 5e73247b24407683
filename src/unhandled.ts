import type { Logger } from './log.ts';

/**
 * A promise rejected with no handler is a bug, but the ones seen here come from the database
 * driver when connections drop (a database restart resets them mid-query): logged as errors,
 * never the end of the service and every request and slot in flight with it.
 */
export function logUnhandledRejections(log: Logger): void {
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled promise rejection (logged; the service keeps running)'));
}
