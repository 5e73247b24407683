import { AppError, type ErrorDetail } from '../errors.ts';

/**
 * How deep client JSON may nest. Generous for any real scene or metadata, and far below
 * what would exhaust a stack anywhere downstream (serializers, PostgreSQL's jsonb parser).
 */
export const MAX_JSON_DEPTH = 64;

/** A number whose decimal text would change on the way through (1e400, 12345678901234567890). */
class LostNumber {
  readonly source: string;
  constructor(source: string) {
    this.source = source;
  }
}

/**
 * Parses a request body that will be stored and echoed verbatim, refusing what could not
 * come back exactly as sent: NUL anywhere (PostgreSQL text and jsonb cannot hold it),
 * strings or keys that are not well-formed Unicode (a lone surrogate has no UTF-8 form;
 * it is refused, never replaced by U+FFFD), numbers that JSON or PostgreSQL would change
 * (not finite, or more digits than a double keeps), and nesting deeper than MAX_JSON_DEPTH.
 * Every problem is a VALIDATION_FAILED naming its path; keys are never altered.
 */
export function parseClientJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text, (_key, v: unknown, context?: { source?: string }) => {
      if (typeof v === 'number' && context?.source !== undefined && !sameNumber(context.source, v)) return new LostNumber(context.source);
      return v;
    });
  } catch (err) {
    if (err instanceof RangeError) throw tooDeep([]);
    throw new AppError('VALIDATION_FAILED', `malformed JSON: ${(err as Error).message}`);
  }
  const problems = findProblems(value);
  if (problems.length > 0) {
    const first = problems[0]!;
    throw new AppError('VALIDATION_FAILED', `invalid body: ${first.path.join('.') || 'body'}: ${first.message}`, problems);
  }
  return value;
}

const MAX_PROBLEMS = 20;

/** Walks the value with an explicit stack (no recursion: depth cannot hurt us here). */
function findProblems(root: unknown): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: root, path: [] }];
  while (stack.length > 0 && problems.length < MAX_PROBLEMS) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = stringProblem(value);
      if (problem) problems.push({ path, message: problem });
    } else if (value instanceof LostNumber) {
      problems.push({ path, message: `the number ${value.source.slice(0, 40)} cannot be stored exactly (send it as a string)` });
    } else if (value !== null && typeof value === 'object') {
      if (path.length >= MAX_JSON_DEPTH) {
        problems.push(tooDeep(path).details[0]!);
        continue;
      }
      if (Array.isArray(value)) {
        for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: [...path, i] });
      } else {
        const keys = Object.keys(value);
        for (let i = keys.length - 1; i >= 0; i--) {
          const key = keys[i]!;
          const problem = stringProblem(key);
          if (problem) problems.push({ path: [...path, key], message: `key ${problem}` });
          stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key] });
        }
      }
    }
  }
  return problems;
}

function stringProblem(s: string): string | undefined {
  if (s.includes('\u0000')) return 'must not contain the NUL character (\\u0000)';
  if (!s.isWellFormed()) return 'must be well-formed Unicode (it contains a lone surrogate)';
  return undefined;
}

function tooDeep(path: (string | number)[]): AppError {
  const message = `nested more than ${MAX_JSON_DEPTH} levels deep`;
  return new AppError('VALIDATION_FAILED', `invalid body: ${message}`, [{ path, message }]);
}

/**
 * Whether the decimal text a client sent and the double it parsed to are the same number,
 * so what we store (the double's shortest text) is what was sent: '0.10' and 0.1 are;
 * '1e400' (Infinity) and '12345678901234567890' (…7000) are not.
 */
export function sameNumber(source: string, value: number): boolean {
  if (!Number.isFinite(value)) return false;
  return normalizeDecimal(source) === normalizeDecimal(String(value));
}

/** A decimal as sign, significant digits and exponent: '-1.50e+3' -> '-15e2'. Zero is '0' whatever its sign. */
function normalizeDecimal(text: string): string {
  const lower = text.toLowerCase();
  const negative = lower.startsWith('-');
  const [mantissa = '', exponent = '0'] = (negative ? lower.slice(1) : lower).split('e');
  const [whole = '', fraction = ''] = mantissa.split('.');
  let digits = (whole + fraction).replace(/^0+/, '');
  if (digits === '') return '0';
  let exp = Number(exponent) - fraction.length;
  const trimmed = digits.replace(/0+$/, '');
  exp += digits.length - trimmed.length;
  digits = trimmed;
  return `${negative ? '-' : ''}${digits}e${exp}`;
}
