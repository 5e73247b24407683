import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('config', () => {
  it('has defaults for running on embedded PostgreSQL', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ HOST: '127.0.0.1', DATA_DIR: '.data', GENERATION_CONCURRENCY: 8, IMAGE_PROVIDER: 'local', STORAGE: 'local' });
    expect(c.DATABASE_URL).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('treats empty values as unset and coerces numbers', () => {
    expect(loadConfig({ PORT: '', GENERATION_CONCURRENCY: '32' })).toMatchObject({ PORT: 3000, GENERATION_CONCURRENCY: 32 });
  });

  it('reports one line per bad value', () => {
    try {
      loadConfig({ PORT: 'abc', GENERATION_CONCURRENCY: '0', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const problems = (err as ConfigError).problems;
      expect(problems).toHaveLength(4);
      expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['DATABASE_URL', 'GENERATION_CONCURRENCY', 'LOG_LEVEL', 'PORT']);
    }
  });
});
