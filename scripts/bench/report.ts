import { cpus, totalmem } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  postgres: string;
}

export function describeMachine(postgresVersion: string): Machine {
  const all = cpus();
  return {
    cpu: all[0]?.model.trim() ?? 'unknown',
    cores: all.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    postgres: postgresVersion,
  };
}

/** One line of the report: a value, what it is compared with (measured in the same run), and the bar. */
export interface Measurement {
  name: string;
  unit: string;
  measured: number;
  baseline: { label: string; value: number };
  /** measured / baseline, or baseline / measured for times (higher is always better). */
  ratio: number;
  /** The bar applies to the ratio or to the measured value itself. */
  target: { of: 'ratio' | 'measured'; min: number };
  pass: boolean;
  /** How the figure was made: sizes, settings, and anything that explains it. */
  details: Record<string, string | number>;
}

/** The p-quantile (0..1) of some measurements, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

export function judge(m: Omit<Measurement, 'pass'>): Measurement {
  const value = m.target.of === 'ratio' ? m.ratio : m.measured;
  return { ...m, pass: value >= m.target.min };
}

const num = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function show(value: number, unit: string): string {
  if (unit === 's') return `${num(value, 3)} s`;
  return `${num(value, value < 100 ? 1 : 0)} ${unit}`;
}

export function markdown(machine: Machine, measurements: readonly Measurement[], seconds: number): string {
  const lines = [
    '## sceneworks bench',
    '',
    '| machine | |',
    '|---|---|',
    `| CPU | ${machine.cpu} |`,
    `| cores | ${machine.cores} |`,
    `| memory | ${machine.memoryGiB} GiB |`,
    `| node | ${machine.node} |`,
    `| postgres | ${machine.postgres} |`,
    '',
    '| measurement | measured | baseline (same run) | ratio | target | result |',
    '|---|---|---|---|---|---|',
  ];
  for (const m of measurements) {
    const target = m.target.of === 'ratio' ? `ratio >= ${num(m.target.min, 2)}` : `>= ${show(m.target.min, m.unit)}`;
    lines.push(
      `| ${m.name} | ${show(m.measured, m.unit)} | ${m.baseline.label}: ${show(m.baseline.value, m.unit)} | ${num(m.ratio, 3)} | ${target} | ${m.pass ? 'pass' : '**FAIL**'} |`,
    );
  }
  lines.push('');
  for (const m of measurements) {
    lines.push(`- **${m.name}**: ${Object.entries(m.details).map(([k, v]) => `${k} ${typeof v === 'number' ? num(v, Number.isInteger(v) ? 0 : 1) : v}`).join('; ')}`);
  }
  lines.push('', `Total bench time: ${num(seconds, 1)} s.`);
  return lines.join('\n');
}

export function json(machine: Machine, measurements: readonly Measurement[], seconds: number): string {
  return JSON.stringify({ machine, measurements, seconds }, null, 2);
}
