import { describe, expect, it } from 'vitest';
import { planLegacyImages, prunableScenes } from '../../src/projects/legacy.ts';

const u = (n: number) => `https://old.test/${n}.png`;

/** Which scene positions may lose their legacy imageUrls, given the image indexes that have rows per scene index. */
function prunable(scenes: unknown[], rows: Record<number, number[]>): number[] {
  const plan = planLegacyImages({ scenes });
  return prunableScenes(plan, (sceneIndex) => (rows[sceneIndex] ? new Set(rows[sceneIndex]) : undefined));
}

describe('prunableScenes: the JSON copy goes only when the rows provably hold all of it', () => {
  it('every usable URL has its row and the rows reach the end of the array: pruned (blanks may go)', () => {
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), null, u(3)] }], { 1: [0, 2] })).toEqual([0]);
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), '', u(3)] }], { 1: [0, 1, 2] })).toEqual([0]);
  });

  it('garbage inside the array is never dropped, even when the rows reach past it', () => {
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), 'not a url', u(3)] }], { 1: [0, 2] })).toEqual([]);
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), 42, u(3)] }], { 1: [0, 2] })).toEqual([]);
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), { url: u(2) }, u(3)] }], { 1: [0, 1, 2] })).toEqual([]);
  });

  it('trailing blanks the rows do not reach keep the array (a read would show fewer slots without it)', () => {
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), null, null] }], { 1: [0] })).toEqual([]);
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), null, null] }], { 1: [0, 2] })).toEqual([0]);
  });

  it('a usable URL without its row, a scene without rows, or a shared index: kept', () => {
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), u(2)] }], { 1: [0] })).toEqual([]);
    // The rows reach the end of the array, but not through the usable URL at 0: it would be lost.
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), u(2)] }], { 1: [1] })).toEqual([]);
    expect(prunable([{ prompt: 'a', imageUrls: [u(1), null, u(3)] }], { 1: [1, 2] })).toEqual([]);
    expect(prunable([{ prompt: 'a', imageUrls: [u(1)] }], {})).toEqual([]);
    expect(prunable([{ prompt: 'a', index: 4, imageUrls: [u(1)] }, { prompt: 'b', index: 4, imageUrls: [u(2)] }], { 4: [0] })).toEqual([]);
  });
});
