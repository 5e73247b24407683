import { setSlotPrompts } from '../db/images.ts';
import { lockProject, replaceScene } from '../db/projects.ts';
import type { Scope } from '../db/scope.ts';
import { AppError, notFound, type ErrorDetail } from '../errors.ts';
import { applyMergePatch } from './merge-patch.ts';
import { getProject, type ProjectsContext } from './projects.ts';
import type { ProjectView } from './project-view.ts';
import { promptOf, sceneIndexOf, scenesOf } from './scene-index.ts';

/** Fields of a scene an edit may not touch: its identity, and what answers add to it. */
const NOT_PATCHABLE = ['index', 'imageUrls', 'images', 'staleImages'] as const;
const PROMPT_MAX = 4000;

/**
 * PATCH /projects/:id/scenes/:sceneIndex: a JSON merge patch (RFC 7396) on the stored scene,
 * every other field kept as stored. Nothing is regenerated: images made from another prompt
 * than the scene's new one read as stale until regenerated.
 */
export async function patchScene(ctx: ProjectsContext, scope: Scope, id: string, sceneIndex: number, patch: unknown): Promise<ProjectView> {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) {
    throw new AppError('VALIDATION_FAILED', 'the body is a JSON merge patch of the scene: an object', [{ path: [], message: 'must be an object' }]);
  }
  const refused: ErrorDetail[] = NOT_PATCHABLE.filter((key) => Object.hasOwn(patch, key)).map((key) => ({
    path: [key],
    message: `${key} cannot be changed by an edit`,
  }));
  if (refused.length > 0) throw new AppError('VALIDATION_FAILED', `invalid body: ${refused.map((r) => r.path[0]).join(', ')} cannot be changed`, refused);

  await ctx.sql.begin(async (tx) => {
    const project = await lockProject(tx, scope, id);
    if (!project) throw notFound('project');
    const scenes = scenesOf(project.generatedOutput);
    const position = scenes.findIndex((scene, i) => sceneIndexOf(scene, i) === sceneIndex);
    if (position < 0) throw notFound(`scene ${sceneIndex}`);
    const before = scenes[position];
    const after = applyMergePatch(before, patch);
    const prompt = (after as Record<string, unknown>).prompt;
    if (typeof prompt !== 'string' || prompt.trim().length < 1 || prompt.trim().length > PROMPT_MAX) {
      throw new AppError('VALIDATION_FAILED', `invalid body: prompt must be 1..${PROMPT_MAX} characters after trimming`, [
        { path: ['prompt'], message: `must be 1..${PROMPT_MAX} characters after trimming` },
      ]);
    }
    await replaceScene(tx, id, position, after);
    const newPrompt = promptOf(after)!;
    if (newPrompt !== promptOf(before)) await setSlotPrompts(tx, id, sceneIndex, newPrompt);
  });
  return getProject(ctx, scope, id);
}
