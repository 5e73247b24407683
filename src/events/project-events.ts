import type { Pool } from '../db/database.ts';
import { isProjectInScope, listenForImageChanges, listImageRowVersions, listWatchedImages, type ImageRowVersion, type WatchedImage } from '../db/events.ts';
import type { Scope } from '../db/scope.ts';
import type { Logger } from '../log.ts';
import type { ObjectStore } from '../storage/store.ts';
import { AppError, notFound } from '../errors.ts';
import { countProgress } from '../projects/progress.ts';
import { readableImages } from '../projects/projects.ts';
import { createBacklog, type ProjectChange, type ProjectSnapshot } from './backlog.ts';
import { eventFrame, progressFrames, type ProgressFrames } from './frames.ts';
import { applyRead, changesOf, inSlotOrder, rowsToRead, statusesOf, type KnownImages } from './known-images.ts';

export interface ProjectWatcher {
  /** First, once: the project as read after the watch began. */
  onSnapshot(snapshot: ProjectSnapshot): void;
  /** Then after each change (coalesced): what changed since the previous call. */
  onChange(change: ProjectChange): void;
  /** The hub is closing: nothing more will come. */
  onEnd(): void;
}

/**
 * One per process: ONE LISTEN for the whole process, whatever the number of clients, and per
 * watched project at most one read in flight. The work of a change is done once per project,
 * never per client: one narrow read of the project's row versions, one read of the rows that
 * were written since, one signing of their URLs (private store) and one serialization of each
 * event; every watcher then gets the same frames.
 */
export interface ProjectEventsHub {
  /** Resolves once the LISTEN is in place (so no later change is missed); returns the unwatch. */
  watch(projectId: string, watcher: ProjectWatcher): Promise<() => void>;
  /** Watchers currently registered. */
  watching(): number;
  /** Ends every watcher and stops listening. */
  close(): Promise<void>;
}

export interface ProjectEventsHubOptions {
  sql: Pool;
  /** Signs the URLs of a private store's images in the events. */
  store: ObjectStore;
  log: Logger;
  /** A notification is answered after this long, so a burst of changes costs one read. */
  coalesceMs?: number | undefined;
  /**
   * The share of the time a watched project may be being read, at most (default 0.1): after a
   * read that took T, the next starts no sooner than T x (1 / share - 1) after it ended. A read
   * costs what the project holds (its row versions), so a large project is read less often, and
   * a loaded machine (slower reads) spaces reads more, instead of spending itself on them.
   */
  readShare?: number | undefined;
  /** How a project's row versions are read, on each change (listImageRowVersions). */
  readVersions?: ((sql: Pool, projectId: string) => Promise<ImageRowVersion[]>) | undefined;
  /** How a project's images are read: all (once, when watching starts), or those ids (listWatchedImages). */
  readImages?: ((sql: Pool, projectId: string, ids?: readonly string[]) => Promise<WatchedImage[]>) | undefined;
}

/** joining: waits for a read to start; snapshotting: the read in flight brings its snapshot; ready: gets changes. */
type WatcherState = 'joining' | 'snapshotting' | 'ready';

interface WatchedProject {
  watchers: Map<ProjectWatcher, WatcherState>;
  /** Undefined until the first read: then every image of the project as last read. */
  known: KnownImages | undefined;
  progress: ProgressFrames | undefined;
  timer: NodeJS.Timeout | undefined;
  reading: boolean;
  /** When the next read may start (performance.now()), by readShare. */
  nextReadAt: number;
  /** A change was notified (or a watcher joined) while a read was in flight: that read may predate it. */
  again: boolean;
}

export function createProjectEventsHub(o: ProjectEventsHubOptions): ProjectEventsHub {
  const coalesceMs = o.coalesceMs ?? 50;
  const spacing = 1 / (o.readShare ?? 0.1) - 1;
  const readVersions = o.readVersions ?? listImageRowVersions;
  const readImages = o.readImages ?? listWatchedImages;
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
  // (or watcher joined) after a read started is followed by another read.
  function schedule(projectId: string, delayMs: number) {
    const project = projects.get(projectId);
    if (!project || closed) return;
    if (project.reading) project.again = true;
    else project.timer ??= setTimeout(() => void refresh(projectId, project), Math.max(delayMs, project.nextReadAt - performance.now()));
  }

  async function refresh(projectId: string, project: WatchedProject) {
    project.timer = undefined;
    project.reading = true;
    const started = performance.now();
    // Those that joined before this read started get their snapshot from it.
    for (const [watcher, state] of project.watchers) if (state === 'joining') project.watchers.set(watcher, 'snapshotting');
    let retryMs = coalesceMs;
    try {
      await readChange(projectId, project);
      if ([...project.watchers.values()].includes('snapshotting')) await sendSnapshot(project);
    } catch (err) {
      if (!closed) o.log.warn({ err, projectId }, 'could not read the images of a watched project; retrying');
      for (const [watcher, state] of project.watchers) if (state === 'snapshotting') project.watchers.set(watcher, 'joining');
      project.again = true;
      retryMs = Math.max(1_000, coalesceMs);
    } finally {
      project.reading = false;
      const ended = performance.now();
      project.nextReadAt = ended + (ended - started) * spacing;
    }
    if (project.watchers.size === 0) {
      if (projects.get(projectId) === project) projects.delete(projectId);
    } else if (project.again) {
      project.again = false;
      schedule(projectId, retryMs);
    }
  }

  /**
   * Reads what changed and sends it to the ready watchers. Everything that can fail (the reads,
   * signing URLs) happens before `known` changes: a failed read is retried whole, never half
   * applied.
   */
  async function readChange(projectId: string, project: WatchedProject) {
    const known = project.known ?? new Map();
    let toRead = { reread: [] as string[], removed: [] as string[] };
    let read: WatchedImage[];
    if (project.known === undefined) read = await readImages(o.sql, projectId);
    else {
      toRead = rowsToRead(known, await readVersions(o.sql, projectId));
      read = toRead.reread.length > 0 ? await readImages(o.sql, projectId, toRead.reread) : [];
    }
    const { changed, removed } = changesOf(known, toRead, read);
    const ready = [...project.watchers].flatMap(([watcher, state]) => (state === 'ready' ? [watcher] : []));
    const seen = ready.length > 0 && (changed.length > 0 || removed.length > 0);
    const shown = seen ? await readableImages(o.store, changed.map((r) => r.image)) : [];

    applyRead(known, read, removed);
    project.known = known;
    if (changed.length === 0 && removed.length === 0 && project.progress) return;
    const progress = progressFrames(countProgress(statusesOf(known)));
    project.progress = progress.progress === project.progress?.progress ? project.progress : progress;
    if (!seen) return;
    const change: ProjectChange = {
      images: shown.map((image) => [image.id, eventFrame({ type: 'image', data: image })] as const),
      removed,
      progress: project.progress,
    };
    // A watcher that unwatched during the reads is no longer in the map.
    for (const watcher of ready) if (project.watchers.get(watcher) === 'ready') watcher.onChange(change);
  }

  async function sendSnapshot(project: WatchedProject) {
    const progress = project.progress!;
    const images = progress.done ? [] : await readableImages(o.store, inSlotOrder(project.known!));
    const snapshot: ProjectSnapshot = { progress, images: images.map((image) => eventFrame({ type: 'image', data: image })).join('') };
    for (const [watcher, state] of project.watchers) {
      if (state !== 'snapshotting') continue;
      project.watchers.set(watcher, 'ready');
      watcher.onSnapshot(snapshot);
    }
  }

  function unwatch(projectId: string, project: WatchedProject, watcher: ProjectWatcher) {
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
      if (!project) {
        project = { watchers: new Map(), known: undefined, progress: undefined, timer: undefined, reading: false, nextReadAt: 0, again: false };
        projects.set(projectId, project);
      }
      project.watchers.set(watcher, 'joining');
      // Its snapshot comes from a read that starts after now, never from older rows.
      schedule(projectId, 0);
      const watched = project;
      return () => unwatch(projectId, watched, watcher);
    },
    watching: () => [...projects.values()].reduce((n, p) => n + p.watchers.size, 0),
    async close() {
      closed = true;
      for (const project of projects.values()) {
        clearTimeout(project.timer);
        for (const watcher of project.watchers.keys()) watcher.onEnd();
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
  hub: ProjectEventsHub;
}

/**
 * The events of one client, as the text of their SSE frames (one or more per item); iterate
 * once. close() ends the iteration and releases the watch.
 */
export interface ProjectEventStream extends AsyncIterable<string> {
  close(): void;
}

/**
 * The events of a project for one client. First the current progress; then, unless the project
 * is already done, an `image` for each current image; then, on each change, an `image` for each
 * image whose status, URL or updatedAt changed and the progress if it changed; and `done` once
 * the project's status is final, which ends the stream. A slow client skips intermediate
 * states (see createBacklog), so its memory stays bounded by the project's size.
 * Throws NOT_FOUND, before anything is sent, for a project that is not in the caller's scope.
 */
export async function openProjectEvents(ctx: ProjectEventsContext, scope: Scope, projectId: string): Promise<ProjectEventStream> {
  if (!(await isProjectInScope(ctx.sql, scope, projectId))) throw notFound('project');
  const backlog = createBacklog();
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
    onSnapshot(snapshot) {
      backlog.snapshot(snapshot);
      wake();
    },
    onChange(change) {
      backlog.change(change);
      wake();
    },
    onEnd: close,
  });

  async function* frames(): AsyncGenerator<string> {
    try {
      for (;;) {
        let text: string | undefined;
        while (!ended && (text = backlog.take()) === undefined) await new Promise<void>((resolve) => (wake = resolve));
        if (ended) return;
        yield text!;
        if (backlog.finished) return;
      }
    } finally {
      close();
    }
  }

  return { close, [Symbol.asyncIterator]: frames };
}
