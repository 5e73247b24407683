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

describe('authentication configuration', () => {
  it('without authentication, only a loopback HOST, unless ALLOW_UNAUTHENTICATED=true', () => {
    for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.53']) expect(loadConfig({ HOST: host }).AUTH).toBe('none');
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(/HOST: 0\.0\.0\.0 is not a loopback address.*AUTH=jwt.*ALLOW_UNAUTHENTICATED=true/);
    expect(() => loadConfig({ HOST: '192.168.1.5' })).toThrow(ConfigError);
    expect(loadConfig({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'true' }).HOST).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0', AUTH: 'jwt', JWT_SECRET: 's'.repeat(32) }).AUTH).toBe('jwt');
  });

  it('AUTH=jwt needs keys, and takes its defaults from SUPABASE_URL', () => {
    expect(() => loadConfig({ AUTH: 'jwt' })).toThrow(/AUTH=jwt needs keys/);
    const c = loadConfig({ AUTH: 'jwt', SUPABASE_URL: 'https://abcd.supabase.co' });
    expect(c).toMatchObject({
      JWT_JWKS_URL: 'https://abcd.supabase.co/auth/v1/.well-known/jwks.json',
      JWT_ISSUER: 'https://abcd.supabase.co/auth/v1',
      JWT_AUDIENCE: 'authenticated',
      JWT_ALLOW_ANONYMOUS: true,
      STORAGE_PUBLIC: false,
      RATE_LIMIT_PER_MIN: 120,
    });
    expect(loadConfig({ AUTH: 'jwt', JWT_SECRET: 's'.repeat(32), STORAGE_PUBLIC: 'true', RATE_LIMIT_PER_MIN: '0' })).toMatchObject({ STORAGE_PUBLIC: true, RATE_LIMIT_PER_MIN: 0 });
    // Single-owner mode: public images and no write limit unless set.
    expect(loadConfig({})).toMatchObject({ AUTH: 'none', STORAGE_PUBLIC: true, RATE_LIMIT_PER_MIN: 0, MAX_PENDING_SLOTS_PER_OWNER: 10_000 });
  });
});

describe('provider and storage configuration', () => {
  it('refuses a default provider whose key is missing, naming the key', () => {
    expect(() => loadConfig({ IMAGE_PROVIDER: 'openai' })).toThrow(/IMAGE_PROVIDER: "openai" needs OPENAI_API_KEY/);
    expect(loadConfig({ IMAGE_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-x' }).IMAGE_PROVIDER).toBe('openai');
  });

  it('needs the Supabase URL and key for STORAGE=supabase', () => {
    try {
      loadConfig({ STORAGE: 'supabase' });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems.map((p) => p.split(':')[0]).sort()).toEqual(['SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_URL']);
    }
    const c = loadConfig({ STORAGE: 'supabase', SUPABASE_URL: 'https://abc.supabase.co', SUPABASE_SERVICE_ROLE_KEY: 'k', STORAGE_PUBLIC: 'false' });
    expect(c).toMatchObject({ STORAGE_BUCKET: 'sceneworks', STORAGE_PUBLIC: false, SIGNED_URL_TTL_S: 3600 });
  });

  it('takes the Storage API by its own URL (SUPABASE_STORAGE_URL), alone or beside a project URL that AUTH=jwt reads', () => {
    const c = loadConfig({ STORAGE: 'supabase', SUPABASE_STORAGE_URL: 'http://storage:5000', SUPABASE_SERVICE_ROLE_KEY: 'k' });
    expect(c).toMatchObject({ SUPABASE_STORAGE_URL: 'http://storage:5000' });
    expect(c.SUPABASE_URL).toBeUndefined();
    const both = loadConfig({
      AUTH: 'jwt',
      STORAGE: 'supabase',
      SUPABASE_URL: 'https://a.supabase.co',
      SUPABASE_STORAGE_URL: 'https://a.storage.supabase.co/storage/v1',
      SUPABASE_SERVICE_ROLE_KEY: 'k',
    });
    expect(both).toMatchObject({
      SUPABASE_STORAGE_URL: 'https://a.storage.supabase.co/storage/v1',
      JWT_JWKS_URL: 'https://a.supabase.co/auth/v1/.well-known/jwks.json',
      JWT_ISSUER: 'https://a.supabase.co/auth/v1',
    });
  });

  it('has default models for every vendor', () => {
    expect(loadConfig({})).toMatchObject({ OPENAI_MODEL: 'gpt-image-1', REPLICATE_MODEL: 'black-forest-labs/flux-schnell', GEMINI_MODEL: 'gemini-2.5-flash-image', STABILITY_MODEL: 'core' });
  });
});
