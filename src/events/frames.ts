import type { SceneImage } from '../projects/merge.ts';
import { projectStatus, type Progress, type ProjectStatus } from '../projects/progress.ts';

/** What GET /projects/:id/events sends. */
export type ProjectEvent =
  | { type: 'image'; data: SceneImage }
  | { type: 'progress'; data: Progress }
  | { type: 'done'; data: { status: ProjectStatus } };

/**
 * An event as the stream sends it: the text of its SSE frame. Built once per change and
 * written as is to every client, so no client serializes anything.
 */
export function eventFrame(event: ProjectEvent): string {
  // JSON.stringify never emits a raw line break: the data is always one `data:` line.
  return `event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/** A project's progress as frames: `progress`, and `done` when its status is final. */
export interface ProgressFrames {
  progress: string;
  /** Set when the status is final: the stream sends it last, then ends. */
  done: string | undefined;
}

const FINAL: ReadonlySet<ProjectStatus> = new Set(['completed', 'partial', 'failed']);

export function progressFrames(progress: Progress): ProgressFrames {
  const status = projectStatus(progress);
  return {
    progress: eventFrame({ type: 'progress', data: progress }),
    done: FINAL.has(status) ? eventFrame({ type: 'done', data: { status } }) : undefined,
  };
}
