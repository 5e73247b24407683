import type { ZodError } from 'zod';
import { AppError } from '../errors.ts';
import { validationError } from './errors.ts';

const WHERE: Record<string, string> = { json: 'body', query: 'query', param: 'path', header: 'headers' };

/** zod-openapi's hook: a failed validation becomes the contract's VALIDATION_FAILED. */
export function validationHook(result: { success: boolean; error?: ZodError; target: string }): void {
  if (result.success || !result.error) return;
  // A malformed id or scene index names nothing that exists: 404, like any unknown id.
  if (result.target === 'param') throw new AppError('NOT_FOUND', `not found: ${result.error.issues.map((i) => i.path.join('.')).join(', ')} is not valid`);
  throw validationError(result.error, WHERE[result.target] ?? result.target);
}
