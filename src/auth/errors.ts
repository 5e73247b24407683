/**
 * A token that does not authenticate anyone: the answer is 401 UNAUTHORIZED. The message is short,
 * safe to show a client, and never contains the token nor any of its claims' values; no `cause` is
 * kept, because jose's claim errors carry the decoded payload (emails, metadata) into any log line
 * that serializes the error.
 */
export class TokenError extends Error {
  override name = 'TokenError';
}

/**
 * The signing keys could not be fetched (JWKS unreachable, timed out, not 200, not a key set), so
 * nothing can be said about the token: the answer is 503 UNAVAILABLE with `Retry-After`, not 401.
 * `cause` is the fetch's own error (it names the JWKS URL, never a token).
 */
export class SigningKeysUnavailableError extends Error {
  override name = 'SigningKeysUnavailableError';
  /** Seconds until the JWKS will be tried again. */
  readonly retryAfterS: number;

  constructor(retryAfterS: number, options?: ErrorOptions) {
    super('signing keys unavailable', options);
    this.retryAfterS = retryAfterS;
  }
}
