export const IMAGE_STATUSES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

export type ProjectStatus = 'queued' | 'running' | 'completed' | 'partial' | 'failed';

export interface Progress {
  total: number;
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
}

export function emptyProgress(): Progress {
  return { total: 0, queued: 0, running: 0, succeeded: 0, failed: 0 };
}

export function countProgress(statuses: Iterable<ImageStatus>): Progress {
  const progress = emptyProgress();
  for (const status of statuses) {
    progress[status] += 1;
    progress.total += 1;
  }
  return progress;
}

/**
 * queued: nothing has started; running: something is pending and something has started or
 * finished; completed: all succeeded (also a project with no slots at all); partial: done,
 * some failed; failed: done, none succeeded.
 */
export function projectStatus(p: Progress): ProjectStatus {
  if (p.queued + p.running > 0) {
    return p.running === 0 && p.succeeded + p.failed === 0 ? 'queued' : 'running';
  }
  if (p.failed === 0) return 'completed';
  return p.succeeded === 0 ? 'failed' : 'partial';
}
