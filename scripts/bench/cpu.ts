import { readdirSync, readFileSync } from 'node:fs';

/**
 * utime + stime of the postmaster and its live children, plus what its exited children
 * used (cutime + cstime), from /proc/<pid>/stat, in clock ticks of 1/100 s.
 */
export function processTreeCpuSeconds(postmaster: number): number {
  let ticks = 0;
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue; // exited while we looked
      }
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      const ppid = Number(fields[1]);
      if (pid === postmaster) ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      else if (ppid === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
    }
  } catch {
    return Number.NaN;
  }
  return ticks / 100;
}

export interface CpuUse {
  /** Seconds of wall time in the window. */
  wall: number;
  nodeUser: number;
  nodeSystem: number;
  postgres: number;
}

/** Starts a window; the function it returns tells what this process and PostgreSQL used since. */
export function cpuWindow(postgresCpuSeconds: () => number): () => CpuUse {
  const wall = performance.now();
  const node = process.cpuUsage();
  const pg = postgresCpuSeconds();
  return () => {
    const used = process.cpuUsage(node);
    return {
      wall: (performance.now() - wall) / 1000,
      nodeUser: used.user / 1e6,
      nodeSystem: used.system / 1e6,
      postgres: postgresCpuSeconds() - pg,
    };
  };
}

/** "node 1.2 s (0.4 user + 0.8 sys), postgres 0.9 s, of 2 cores × 1.5 s" */
export function describeCpu(use: CpuUse, cores: number): string {
  const f = (x: number) => x.toFixed(2);
  return `node ${f(use.nodeUser + use.nodeSystem)} s (${f(use.nodeUser)} user + ${f(use.nodeSystem)} sys), postgres ${f(use.postgres)} s, of ${cores} cores × ${f(use.wall)} s wall`;
}
