import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** The environment, validated once at start. Nothing else reads process.env. */
export const ConfigSchema = z.object({
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('.data'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DATABASE_POOL_SIZE: int(2, 200).optional(),
  PUBLIC_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
  GENERATION_CONCURRENCY: int(1, 1000).default(8),
  IMAGE_PROVIDER: z.enum(['local']).default('local'),
  LOCAL_PROVIDER_DELAY_MS: int(0, 600_000).default(0),
  STORAGE: z.enum(['local']).default('local'),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  LEASE_MS: int(1_000, 3_600_000).default(30_000),
  POLL_INTERVAL_MS: int(10, 60_000).default(1_000),
  SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  MAX_BODY_BYTES: int(1_024, 64 * 1024 * 1024).default(4 * 1024 * 1024),
  MAX_ATTEMPTS: int(1, 100).default(3),
  PROJECT_CACHE_MB: int(0, 65_536).default(64),
  RUNNER: z.enum(['on', 'off']).default('on'),
});

export type Config = Readonly<z.infer<typeof ConfigSchema>>;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.join('\n')}`);
    this.problems = problems;
  }
}

/** Empty strings count as unset, so `FOO= npm start` means "use the default". */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = ConfigSchema.safeParse(present);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  return Object.freeze(result.data);
}
