import { countExistingSlots, countProjects, insertBackfillImages, readProjectBatch, slotsOfProjects, type BackfillImage } from '../db/backfill.ts';
import type { Pool } from '../db/database.ts';
import { removeLegacyImageUrls } from '../db/projects.ts';
import { planLegacyImages, prunableScenes, SKIP_REASONS, type LegacySkip, type SkipReason } from '../projects/legacy.ts';

export interface BackfillOptions {
  batchSize: number;
  dryRun: boolean;
  projectId?: string | undefined;
  pruneLegacy: boolean;
  /** Called after each batch has committed. */
  onBatch?: (progress: BackfillProgress) => void;
  /** Every skipped item, as it is found. */
  onSkip?: (skip: LegacySkip & { projectId: string }) => void;
}

export interface BackfillProgress {
  projectsScanned: number;
  projectsTotal: number;
  rowsInserted: number;
  lastProjectId: string | null;
}

export interface BackfillSummary {
  dryRun: boolean;
  projectsScanned: number;
  batches: number;
  legacyImages: number;
  rowsInserted: number;
  /** With --dry-run: what a real run would insert. */
  wouldInsert: number;
  alreadyPresent: number;
  skipped: Record<SkipReason, number>;
  skippedTotal: number;
  scenesPruned: number;
}

/**
 * Moves legacy imageUrls into generated_images. Keyset batches of projects, each in its own
 * short transaction with ONE insert statement for all of the batch's images; existing rows
 * win (on conflict do nothing). Killed at any point and run again, it ends where one
 * uninterrupted run would: a batch is committed whole or not at all, and a rerun inserts
 * only what is missing.
 */
export async function runBackfill(sql: Pool, o: BackfillOptions): Promise<BackfillSummary> {
  const summary: BackfillSummary = {
    dryRun: o.dryRun,
    projectsScanned: 0,
    batches: 0,
    legacyImages: 0,
    rowsInserted: 0,
    wouldInsert: 0,
    alreadyPresent: 0,
    skipped: Object.fromEntries(SKIP_REASONS.map((r) => [r, 0])) as Record<SkipReason, number>,
    skippedTotal: 0,
    scenesPruned: 0,
  };
  const projectsTotal = await countProjects(sql, o.projectId);
  let after: string | null = null;
  for (;;) {
    const batch = await sql.begin(async (tx) => {
      // Pruning rewrites the JSON: lock the batch so what we verified is what we write.
      const projects = await readProjectBatch(tx, { after, limit: o.batchSize, projectId: o.projectId, lock: o.pruneLegacy && !o.dryRun });
      const plans = projects.map((p) => ({ id: p.id, plan: planLegacyImages(p.generatedOutput) }));
      const images: BackfillImage[] = plans.flatMap(({ id, plan }) => plan.images.map((image) => ({ ...image, projectId: id })));
      let inserted = 0;
      let existing = 0;
      if (o.dryRun) existing = await countExistingSlots(tx, images);
      else inserted = await insertBackfillImages(tx, images);
      let pruned = 0;
      if (o.pruneLegacy && !o.dryRun) {
        const slots = await slotsOfProjects(tx, plans.map((p) => p.id));
        const items = plans
          .map(({ id, plan }) => ({ projectId: id, positions: prunableScenes(plan, (sceneIndex) => slots.get(`${id}:${sceneIndex}`)) }))
          .filter((item) => item.positions.length > 0);
        await removeLegacyImageUrls(tx, items);
        pruned = items.reduce((n, item) => n + item.positions.length, 0);
      }
      return { projects, plans, images, inserted, existing, pruned };
    });
    if (batch.projects.length === 0) break;
    after = batch.projects[batch.projects.length - 1]!.id;
    summary.batches += 1;
    summary.projectsScanned += batch.projects.length;
    summary.legacyImages += batch.images.length;
    summary.rowsInserted += batch.inserted;
    summary.scenesPruned += batch.pruned;
    if (o.dryRun) {
      summary.wouldInsert += batch.images.length - batch.existing;
      summary.alreadyPresent += batch.existing;
    } else {
      summary.alreadyPresent += batch.images.length - batch.inserted;
    }
    for (const { id, plan } of batch.plans) {
      for (const skip of plan.skipped) {
        summary.skipped[skip.reason] += 1;
        summary.skippedTotal += 1;
        o.onSkip?.({ ...skip, projectId: id });
      }
    }
    o.onBatch?.({ projectsScanned: summary.projectsScanned, projectsTotal, rowsInserted: summary.rowsInserted, lastProjectId: after });
    if (batch.projects.length < o.batchSize) break;
  }
  return summary;
}
