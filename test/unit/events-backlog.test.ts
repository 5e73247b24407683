import { describe, expect, it } from 'vitest';
import type { WatchedImage } from '../../src/db/events.ts';
import { createBacklog, type ProjectChange } from '../../src/events/backlog.ts';
import { progressFrames } from '../../src/events/frames.ts';
import { changesOf, rowsToRead, type KnownImages } from '../../src/events/known-images.ts';
import type { ImageStatus } from '../../src/projects/progress.ts';
import { countProgress } from '../../src/projects/progress.ts';

const progressOf = (...statuses: ImageStatus[]) => progressFrames(countProgress(statuses));
const change = (images: [string, string][], progress = progressOf('running', 'queued'), removed: string[] = []): ProjectChange => ({ images, removed, progress });

describe('a client backlog', () => {
  it('sends progress and every image first, then each change and the progress if it changed', () => {
    const b = createBacklog();
    expect(b.take()).toBeUndefined(); // nothing before its snapshot
    const first = progressOf('queued', 'queued');
    b.snapshot({ progress: first, images: '<a0><b0>' });
    expect(b.take()).toBe(`${first.progress}<a0><b0>`);
    expect(b.take()).toBeUndefined();

    b.change(change([['a', '<a1>']], first)); // same progress: not sent again
    expect(b.take()).toBe('<a1>');
    const running = progressOf('running', 'queued');
    b.change(change([['b', '<b1>']], running));
    expect(b.take()).toBe(`<b1>${running.progress}`);
    expect(b.finished).toBe(false);

    const done = progressOf('succeeded', 'succeeded');
    b.change(change([['a', '<a2>'], ['b', '<b2>']], done));
    expect(b.take()).toBe(`<a2><b2>${done.progress}${done.done}`);
    expect(b.finished).toBe(true);
    b.change(change([['a', '<a3>']]));
    expect(b.take()).toBeUndefined();
  });

  it('merges the changes a slow client has not taken: the latest frame of each image, once, and the latest progress', () => {
    const b = createBacklog();
    const first = progressOf('queued', 'queued', 'queued');
    b.snapshot({ progress: first, images: '<a0><b0><c0>' });
    b.change(change([['a', '<a1>']], progressOf('running', 'queued', 'queued')));
    b.change(change([['b', '<b1>'], ['a', '<a2>']], progressOf('succeeded', 'running', 'queued')));
    b.change(change([['c', '<c1>']], first)); // progress back to what was sent: not sent
    expect(b.take()).toBe(`${first.progress}<a0><b0><c0><a2><b1><c1>`);
    expect(b.take()).toBeUndefined();
  });

  it('drops what it holds for an image that is gone before it was sent', () => {
    const b = createBacklog();
    b.snapshot({ progress: progressOf('queued', 'queued'), images: '<a0><b0>' });
    expect(b.take()).toBeDefined();
    b.change(change([['a', '<a1>'], ['b', '<b1>']]));
    const shrunk = progressOf('running');
    b.change(change([], shrunk, ['b']));
    expect(b.take()).toBe(`<a1>${shrunk.progress}`);
  });

  it('a project done when the client joined: progress and done, whatever changes after', () => {
    const b = createBacklog();
    const done = progressOf('succeeded', 'failed');
    b.snapshot({ progress: done, images: '' });
    b.change(change([['a', '<a1>']], progressOf('queued', 'failed')));
    expect(b.take()).toBe(`${done.progress}${done.done}`);
    expect(b.finished).toBe(true);
    expect(() => b.snapshot({ progress: done, images: '' })).toThrow();
  });

  it('a project that ends before a slow client took anything: the snapshot, the changes, progress and done', () => {
    const b = createBacklog();
    const first = progressOf('running');
    b.snapshot({ progress: first, images: '<a0>' });
    const done = progressOf('succeeded');
    b.change(change([['a', '<a1>']], done));
    expect(b.take()).toBe(`${first.progress}<a0><a1>${done.progress}${done.done}`);
    expect(b.finished).toBe(true);
  });
});

describe('known images', () => {
  const row = (id: string, rowVersion: string, status: ImageStatus = 'queued', updatedAt = '2026-01-01T00:00:00.000Z'): WatchedImage => ({
    rowVersion,
    image: {
      id, storageKey: null, sceneIndex: 1, imageIndex: 0, status, url: null, width: null, height: null, mimeType: null, bytes: null,
      provider: null, model: null, seed: null, attempts: 0, error: null, stale: false, createdAt: updatedAt, updatedAt,
    },
  });
  const known = (...rows: WatchedImage[]): KnownImages => new Map(rows.map((r) => [r.image.id, r]));

  it('rereads new rows and rows written since, and finds the ones that are gone', () => {
    const k = known(row('a', '1'), row('b', '1'), row('c', '1'));
    expect(rowsToRead(k, [{ id: 'a', rowVersion: '1' }, { id: 'b', rowVersion: '1' }, { id: 'c', rowVersion: '1' }])).toEqual({ reread: [], removed: [] });
    expect(rowsToRead(k, [{ id: 'a', rowVersion: '2' }, { id: 'c', rowVersion: '1' }, { id: 'd', rowVersion: '2' }])).toEqual({ reread: ['a', 'd'], removed: ['b'] });
  });

  it('a row written without a visible change (a heartbeat) is no change; a row gone while being read is removed', () => {
    const k = known(row('a', '1'), row('b', '1', 'running'), row('c', '1'));
    const toRead = { reread: ['a', 'b', 'c', 'new'], removed: [] };
    const { changed, removed } = changesOf(k, toRead, [row('a', '2'), row('b', '2', 'succeeded'), row('new', '2')]);
    expect(changed.map((r) => r.image.id)).toEqual(['b', 'new']);
    expect(removed).toEqual(['c']);
  });
});
