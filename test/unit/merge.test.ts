import { describe, expect, it } from 'vitest';
import { mergeScenes, type SceneImage } from '../../src/projects/merge.ts';

function image(sceneIndex: number, imageIndex: number, over: Partial<SceneImage> = {}): SceneImage {
  return {
    id: `00000000-0000-4000-8000-${String(sceneIndex * 100 + imageIndex).padStart(12, '0')}`,
    sceneIndex,
    imageIndex,
    status: 'succeeded',
    url: `https://cdn.test/${sceneIndex}/${imageIndex}.png`,
    width: 1344,
    height: 768,
    mimeType: 'image/png',
    bytes: 10,
    provider: 'local',
    model: null,
    seed: 1,
    attempts: 1,
    error: null,
    stale: false,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

describe('mergeScenes', () => {
  it('keeps every field of every scene and adds imageUrls and images from rows', () => {
    const stored = { scenes: [{ prompt: 'a', narration: 'n', extra: { deep: [1, 2] } }, { prompt: 'b', index: 7 }] };
    const merged = mergeScenes(stored, [image(1, 1), image(1, 0), image(7, 0)]);
    expect(merged.scenes[0]).toMatchObject({ prompt: 'a', narration: 'n', extra: { deep: [1, 2] } });
    expect(merged.scenes[0]!.imageUrls).toEqual(['https://cdn.test/1/0.png', 'https://cdn.test/1/1.png']);
    expect(merged.scenes[0]!.images.map((i) => i.imageIndex)).toEqual([0, 1]);
    expect(merged.scenes[0]!.images[0]).not.toHaveProperty('sceneIndex');
    expect(merged.scenes[1]).toMatchObject({ prompt: 'b', index: 7, imageUrls: ['https://cdn.test/7/0.png'] });
  });

  it('gives null for a slot without a URL and sizes imageUrls by the slots', () => {
    const merged = mergeScenes({ scenes: [{ prompt: 'a' }] }, [image(1, 0, { url: null, status: 'running' }), image(1, 2)]);
    expect(merged.scenes[0]!.imageUrls).toEqual([null, null, 'https://cdn.test/1/2.png']);
  });

  it('keeps legacy imageUrls for scenes without rows, and rows win where they exist', () => {
    const stored = {
      scenes: [
        { prompt: 'a', imageUrls: ['https://old/1.png', null, ''] },
        { prompt: 'b', imageUrls: ['https://old/2.png'] },
      ],
    };
    const merged = mergeScenes(stored, [image(2, 0)]);
    expect(merged.scenes[0]!.imageUrls).toEqual(['https://old/1.png', null, null]);
    expect(merged.scenes[0]!.images).toEqual([]);
    expect(merged.scenes[1]!.imageUrls).toEqual(['https://cdn.test/2/0.png']);
  });

  it('passes other top-level fields through and survives messy stored JSON', () => {
    expect(mergeScenes({ scenes: [], version: 3, meta: { a: 1 } }, [])).toEqual({ scenes: [], version: 3, meta: { a: 1 } });
    expect(mergeScenes(null, [image(1, 0)])).toEqual({ scenes: [] });
    expect(mergeScenes({ scenes: 'nope' }, [])).toEqual({ scenes: [] });
    expect(mergeScenes({ scenes: [{ prompt: 'a', imageUrls: 'x' }] }, []).scenes[0]!.imageUrls).toEqual([]);
  });

  it('does not mutate its input', () => {
    const stored = { scenes: [{ prompt: 'a', imageUrls: ['u'] }] };
    const copy = structuredClone(stored);
    mergeScenes(stored, [image(1, 0)]);
    expect(stored).toEqual(copy);
  });

  it('counts the stale images of each scene (0 for scenes without rows)', () => {
    const merged = mergeScenes({ scenes: [{ prompt: 'a' }, { prompt: 'b', imageUrls: ['https://old.test/x.png'] }] }, [
      image(1, 0, { stale: true }),
      image(1, 1),
      image(1, 2, { stale: true }),
    ]);
    expect(merged.scenes.map((s) => s.staleImages)).toEqual([2, 0]);
    expect(merged.scenes[0]!.images.map((i) => i.stale)).toEqual([true, false, true]);
  });
});
