import type { Logger } from '../log.ts';

/** What every request carries through the app. */
export interface AppEnv {
  Variables: {
    requestId: string;
    /** The authenticated owner; in single-user mode the fixed local owner. */
    ownerId: string;
    log: Logger;
  };
}
