/**
 * V8 flags the service is started with (`npm start`, the Dockerfile's CMD, the benches that
 * run it in a process of its own; test/unit/node-flags.test.ts keeps them in step).
 *
 * --max-semi-space-size=16: V8's young generation, where nearly every object of a request or a
 * commit is born and dies, may grow to several times this; Node 24's default let it grow
 * further on this machine, and the garbage it held was most of the peak memory while
 * generating. Measured (npm run bench -- --only watchers, 10,000 slots, two runs each,
 * 2026-11-23): peak RSS 300-322 MiB instead of 367-389 with no stream, 353-363 instead of
 * 422-431 with 200 streams, run times within the runs' own spread (22-29 s vs 26-31 s).
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
