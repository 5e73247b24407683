import { deleteProjectRows } from '../db/image-lifecycle.ts';
import type { Scope } from '../db/scope.ts';
import { notFound } from '../errors.ts';
import { removeObjects, type ImagesContext } from '../images/lifecycle.ts';

/**
 * Deletes a project, all its rows and every object it stored (kept versions included),
 * whatever state its slots are in. A slot still being generated (here or on another replica)
 * finds its row gone when it commits, and removes what it uploaded itself (the runner's fence).
 * Objects no row names any more (a worker that died after uploading) go with the project's
 * whole prefix when the store can remove one.
 */
export async function deleteProject(ctx: ImagesContext, scope: Scope, id: string): Promise<void> {
  const keys = await ctx.sql.begin((tx) => deleteProjectRows(tx, scope, id));
  if (keys === undefined) throw notFound('project');
  await removeObjects(ctx, keys);
  if (ctx.store.removePrefix) {
    await ctx.store.removePrefix(`projects/${id}/`).catch((err: unknown) => ctx.log.warn({ err, projectId: id }, 'could not remove the project folder'));
  }
}
