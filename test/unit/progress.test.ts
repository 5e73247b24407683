import { describe, expect, it } from 'vitest';
import { countProgress, projectStatus } from '../../src/projects/progress.ts';
import { sceneIndexOf } from '../../src/projects/scene-index.ts';
import { imageKey } from '../../src/generation/storage-key.ts';
import { fullPromptOf } from '../../src/generation/prompt.ts';

describe('project status', () => {
  const status = (...s: Parameters<typeof countProgress>[0] extends Iterable<infer T> ? T[] : never) => projectStatus(countProgress(s));
  it('is queued while nothing has started', () => expect(status('queued', 'queued')).toBe('queued'));
  it('is running once anything started while something is pending', () => {
    expect(status('queued', 'running')).toBe('running');
    expect(status('queued', 'succeeded')).toBe('running');
    expect(status('queued', 'failed')).toBe('running');
  });
  it('is completed when all succeeded, partial when some failed, failed when none succeeded', () => {
    expect(status('succeeded', 'succeeded')).toBe('completed');
    expect(status('succeeded', 'failed')).toBe('partial');
    expect(status('failed', 'failed')).toBe('failed');
  });
  it('counts every status', () => {
    expect(countProgress(['queued', 'running', 'succeeded', 'succeeded', 'failed'])).toEqual({ total: 5, queued: 1, running: 1, succeeded: 2, failed: 1 });
  });
});

describe('sceneIndexOf', () => {
  it('uses scene.index when it is an integer >= 0, else position + 1', () => {
    expect(sceneIndexOf({ index: 0 }, 4)).toBe(0);
    expect(sceneIndexOf({ index: 12 }, 0)).toBe(12);
    expect(sceneIndexOf({}, 0)).toBe(1);
    for (const bad of [-1, 1.5, '3', null, Number.NaN, 2 ** 60]) expect(sceneIndexOf({ index: bad }, 2)).toBe(3);
    expect(sceneIndexOf('not an object', 5)).toBe(6);
    expect(sceneIndexOf([1], 0)).toBe(1);
  });
});

describe('imageKey', () => {
  it('names project, scene, slot, generation and attempt, so keys are never reused', () => {
    const base = { projectId: 'p', sceneIndex: 2, imageIndex: 1, generation: 0, attempt: 1, mimeType: 'image/png' };
    expect(imageKey(base)).toBe('projects/p/scene-2/image-1-g0-a1.png');
    const keys = new Set([imageKey(base), imageKey({ ...base, generation: 1 }), imageKey({ ...base, attempt: 2 }), imageKey({ ...base, mimeType: 'image/jpeg' })]);
    expect(keys.size).toBe(4);
  });
});

describe('fullPromptOf', () => {
  it('appends the style when there is one', () => {
    expect(fullPromptOf(' a cat ', 'watercolor')).toBe('a cat. Style: watercolor');
    expect(fullPromptOf('a cat', null)).toBe('a cat');
    expect(fullPromptOf('a cat', '  ')).toBe('a cat');
  });
});
