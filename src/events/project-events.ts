import type { Pool } from '../db/database.ts';
import { isProjectInScope, listenForImageChanges } from '../db/events.ts';
import type { Scope } from '../db/scope.ts';
import { listProjectImages, type StoredSceneImage } from '../db/images.ts';
import type { Logger } from '../log.ts';
import type { ObjectStore } from '../storage/store.ts';
import { AppError, notFound } from '../errors.ts';
import type { SceneImage } from '../projects/merge.ts';
import { countProgress, projectStatus, type Progress, type ProjectStatus } from '../projects/progress.ts';
import { readableImages } from '../projects/projects.ts';

/** What GET /projects/:id/events sends. */
export type ProjectEvent =
  | { type: 'image'; data: SceneImage }
  | { type: 'progress'; data: Progress }
  | { type: 'done'; data: { status: ProjectStatus } };

export interface ImageWatcher {
  /** Every image row of the project: once at first, then after each change (coalesced). */
  onRows(rows: StoredSceneImage[]): void;
  /** The hub is closing: no more rows will come. */
  onEnd(): void;
}

/**
 * One per process: ONE LISTEN for the whole process, whatever the number of clients, and at
 * most one read of a project's images in flight, shared by all of that project's watchers.
 */
export interface ProjectEventsHub {
  /** Resolves once the LISTEN is in place (so no later change is missed); returns the unwatch. */
  watch(projectId: string, watcher: ImageWatcher): Promise<() => void>;
  /** Watchers currently registered. */
  watching(): number;
  /** Ends every watcher and stops listening. */
  close(): Promise<void>;
}

export interface ProjectEventsHubOptions {
  sql: Pool;
  log: Logger;
  /** A notification is answered after this long, so a burst of changes costs one read. */
  coalesceMs?: number | undefined;
  /** How a project's images are read (listProjectImages). */
  readImages?: ((sql: Pool, projectId: string) => Promise<StoredSceneImage[]>) | undefined;
}

interface WatchedProject {
  watchers: Set<ImageWatcher>;
  timer: NodeJS.Timeout | undefined;
  reading: boolean;
  /** A change was notified while a read was in flight: that read may predate it. */
  again: boolean;
}

export function createProjectEventsHub(o: ProjectEventsHubOptions): ProjectEventsHub {
  const coalesceMs = o.coalesceMs ?? 50;
  const readImages = o.readImages ?? listProjectImages;
  const projects = new Map<string, WatchedProject>();
  let listening: Promise<() => Promise<void>> | undefined;
  let listens = 0;
  let closed = false;

  function listen() {
    listening ??= listenForImageChanges(
      o.sql,
      (projectId) => schedule(projectId, coalesceMs),
      () => {
        // After a reconnect, changes made while we were away were never notified: read them.
        if (++listens > 1) for (const projectId of projects.keys()) schedule(projectId, 0);
      },
    ).catch((err: unknown) => {
      listening = undefined; // the next watch tries again
      throw err;
    });
    return listening;
  }

  // Invariant: per project, at most one timer or one read at a time, and every change notified
  // after a read started is followed by another read.
  function schedule(projectId: string, delayMs: number) {
    const project = projects.get(projectId);
    if (!project || closed) return;
    if (project.reading) project.again = true;
    else project.timer ??= setTimeout(() => void refresh(projectId, project), delayMs);
  }

  async function refresh(projectId: string, project: WatchedProject) {
    project.timer = undefined;
    project.reading = true;
    let retryMs = coalesceMs;
    try {
      const rows = await readImages(o.sql, projectId);
      for (const watcher of project.watchers) watcher.onRows(rows);
    } catch (err) {
      if (!closed) o.log.warn({ err, projectId }, 'could not read the images of a watched project; retrying');
      project.again = true;
      retryMs = Math.max(1_000, coalesceMs);
    } finally {
      project.reading = false;
    }
    if (project.watchers.size === 0) {
      if (projects.get(projectId) === project) projects.delete(projectId);
    } else if (project.again) {
      project.again = false;
      schedule(projectId, retryMs);
    }
  }

  function unwatch(projectId: string, project: WatchedProject, watcher: ImageWatcher) {
    project.watchers.delete(watcher);
    if (project.watchers.size > 0 || project.reading) return; // a read in flight removes it when done
    clearTimeout(project.timer);
    if (projects.get(projectId) === project) projects.delete(projectId);
  }

  return {
    async watch(projectId, watcher) {
      if (!closed) await listen();
      if (closed) throw new AppError('UNAVAILABLE', 'the service is shutting down');
      let project = projects.get(projectId);
      if (!project) projects.set(projectId, (project = { watchers: new Set(), timer: undefined, reading: false, again: false }));
      project.watchers.add(watcher);
      schedule(projectId, 0); // the watcher's first rows
      const watched = project;
      return () => unwatch(projectId, watched, watcher);
    },
    watching: () => [...projects.values()].reduce((n, p) => n + p.watchers.size, 0),
    async close() {
      closed = true;
      for (const project of projects.values()) {
        clearTimeout(project.timer);
        for (const watcher of project.watchers) watcher.onEnd();
        project.watchers.clear();
      }
      projects.clear();
      const unlisten = await listening?.catch(() => undefined);
      await unlisten?.().catch(() => {});
    },
  };
}

export interface ProjectEventsContext {
  sql: Pool;
  store: ObjectStore;
  hub: ProjectEventsHub;
}

/** The events of one client; iterate once. close() ends the iteration and releases the watch. */
export interface ProjectEventStream extends AsyncIterable<ProjectEvent> {
  close(): void;
}

const FINAL: ReadonlySet<ProjectStatus> = new Set(['completed', 'partial', 'failed']);

/**
 * The events of a project for one client. First the current progress; then, unless the project
 * is already done, an `image` for each current image; then, on each change, an `image` for each
 * image whose status, URL or updatedAt changed and the progress if it changed; and `done` once
 * the project's status is final, which ends the stream. A slow client skips intermediate
 * states (it is diffed against the latest rows when it is ready), so memory stays bounded.
 * Throws NOT_FOUND, before anything is sent, for a project that is not in the caller's scope.
 */
export async function openProjectEvents(ctx: ProjectEventsContext, scope: Scope, projectId: string): Promise<ProjectEventStream> {
  if (!(await isProjectInScope(ctx.sql, scope, projectId))) throw notFound('project');
  let latest: StoredSceneImage[] | undefined;
  let ended = false;
  let wake = () => {};
  let unwatch = () => {};
  const close = () => {
    if (ended) return;
    ended = true;
    unwatch();
    wake();
  };
  unwatch = await ctx.hub.watch(projectId, {
    onRows(rows) {
      latest = rows;
      wake();
    },
    onEnd: close,
  });

  async function* events(): AsyncGenerator<ProjectEvent> {
    let sent = new Map<string, string>();
    let sentProgress: string | undefined;
    try {
      for (;;) {
        while (latest === undefined && !ended) await new Promise<void>((resolve) => (wake = resolve));
        if (ended) return;
        const rows = latest!;
        latest = undefined;
        const first = sentProgress === undefined;
        const progress = countProgress(rows.map((r) => r.status));
        const done = FINAL.has(projectStatus(progress));
        const changed = rows.filter((r) => sent.get(r.id) !== versionOf(r));
        sent = new Map(rows.map((r) => [r.id, versionOf(r)]));

        if (first) yield { type: 'progress', data: progress };
        if (!(first && done)) {
          for (const image of await readableImages(ctx.store, changed)) yield { type: 'image', data: image };
        }
        if (!first && JSON.stringify(progress) !== sentProgress) yield { type: 'progress', data: progress };
        sentProgress = JSON.stringify(progress);
        if (done) {
          yield { type: 'done', data: { status: projectStatus(progress) } };
          return;
        }
      }
    } finally {
      close();
    }
  }

  return { close, [Symbol.asyncIterator]: events };
}

/** What a client can see change on an image; a re-signed URL alone is no change. */
function versionOf(image: StoredSceneImage): string {
  return `${image.status}|${image.url}|${image.storageKey}|${image.updatedAt}`;
}
