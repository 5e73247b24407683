import type { ProgressFrames } from './frames.ts';

/** A project as a watcher first sees it; built once for every watcher that joins at one read. */
export interface ProjectSnapshot {
  progress: ProgressFrames;
  /** The `image` frame of every current image, in slot order, joined; '' when the project is done. */
  images: string;
}

/** What one read of a project changed, built once for every watcher. */
export interface ProjectChange {
  /** The `image` frame of each image a client sees changed (or new), by image id. */
  images: ReadonlyArray<readonly [id: string, frame: string]>;
  /** Images that are gone: a slot removed, or an emptied slot's previous id. */
  removed: readonly string[];
  progress: ProgressFrames;
}

/**
 * What one client has not been sent yet. A client that keeps up takes each change as it comes;
 * a slow one skips intermediate states but never the latest state of any image: changes merge
 * by image id, so the backlog holds at most one frame per image (bounded by the project's size,
 * and empty once taken) plus the latest progress. Adding a change costs O(images changed).
 */
export interface Backlog {
  /** First, once: what the client is sent before any change. */
  snapshot(snapshot: ProjectSnapshot): void;
  change(change: ProjectChange): void;
  /** The frames to send now, in order; undefined when there is nothing new (or once finished). */
  take(): string | undefined;
  /** `done` was taken: nothing more comes. */
  readonly finished: boolean;
}

/**
 * The stream's contract: `progress` first; then, unless the project is already done, every
 * current image; then, per change, the changed images and `progress` if it changed; `done`
 * once the status is final. A project done when the client joined sends `progress` and `done`.
 */
export function createBacklog(): Backlog {
  /** The snapshot, until taken. */
  let head: string | undefined;
  /** The snapshot said done: the stream ends with it, whatever changes after. */
  let ending = false;
  let started = false;
  let finished = false;
  const images = new Map<string, string>();
  let latest: ProgressFrames | undefined;
  let sentProgress: string | undefined;

  return {
    snapshot(snapshot) {
      if (started) throw new Error('a backlog takes one snapshot');
      started = true;
      const { progress, done } = snapshot.progress;
      ending = done !== undefined;
      head = ending ? progress + done : progress + snapshot.images;
      latest = snapshot.progress;
      sentProgress = progress;
    },
    change(change) {
      if (!started || ending) return; // before its snapshot, a watcher has nothing to merge into
      for (const id of change.removed) images.delete(id);
      for (const [id, frame] of change.images) images.set(id, frame);
      latest = change.progress;
    },
    take() {
      if (finished || !started) return undefined;
      let out = head ?? '';
      head = undefined;
      if (ending) {
        finished = true;
        return out;
      }
      for (const frame of images.values()) out += frame;
      images.clear();
      if (latest!.progress !== sentProgress) {
        out += latest!.progress;
        sentProgress = latest!.progress;
      }
      if (latest!.done !== undefined) {
        out += latest!.done;
        finished = true;
      }
      return out === '' ? undefined : out;
    },
    get finished() {
      return finished;
    },
  };
}
