import { toIso } from '../db/database.ts';
import type { ProjectRow } from '../db/projects.ts';
import { mergeScenes, type GeneratedOutputView, type SceneImage } from './merge.ts';
import { countProgress, projectStatus, type Progress, type ProjectStatus } from './progress.ts';

export interface ProjectSettings {
  imagesPerScene: number;
  aspectRatio: string;
  style: string | null;
  provider: string | null;
  model: string | null;
}

export interface ProjectView {
  id: string;
  title: string | null;
  status: ProjectStatus;
  createdAt: string;
  updatedAt: string;
  settings: ProjectSettings;
  metadata: unknown;
  progress: Progress;
  generatedOutput: GeneratedOutputView;
}

/** Settings as stored, with legacy rows (settings {} or null) given the contract's defaults. */
export function settingsOf(stored: Record<string, unknown> | null): ProjectSettings {
  const s = stored ?? {};
  const str = (v: unknown) => (typeof v === 'string' ? v : null);
  return {
    imagesPerScene: typeof s.imagesPerScene === 'number' && Number.isInteger(s.imagesPerScene) && s.imagesPerScene > 0 ? s.imagesPerScene : 1,
    aspectRatio: str(s.aspectRatio) ?? '16:9',
    style: str(s.style),
    provider: str(s.provider),
    model: str(s.model),
  };
}

/** The project as GET /projects/:id shows it. Pure. */
export function projectView(row: ProjectRow, images: readonly SceneImage[]): ProjectView {
  const progress = countProgress(images.map((i) => i.status));
  let updatedAt = toIso(row.updatedAt);
  for (const image of images) if (image.updatedAt > updatedAt) updatedAt = image.updatedAt;
  return {
    id: row.id,
    title: row.title,
    status: projectStatus(progress),
    createdAt: toIso(row.createdAt),
    updatedAt,
    settings: settingsOf(row.settings),
    metadata: row.metadata ?? null,
    progress,
    generatedOutput: mergeScenes(row.generatedOutput, images),
  };
}
