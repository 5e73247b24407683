import type { Scope } from '../db/scope.ts';
import type { Logger } from '../log.ts';

/** What every request carries through the app. */
export interface AppEnv {
  Variables: {
    requestId: string;
    /** Whose projects this request sees and acts on (see db/scope.ts); set by authenticate, absent on public paths. */
    scope: Scope;
    log: Logger;
    /** The JSON body exactly as sent (set by jsonBody), for what is stored verbatim. */
    body: unknown;
  };
}
