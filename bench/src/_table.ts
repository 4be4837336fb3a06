/** Shared output for benchmarks: one table, ours beside the anchor, with the ratio ours/anchor. */
export interface BenchRow {
  metric: string;
  unit: string;
  ours: number;
  anchor: number;
  anchorName: string;
  /** true when a larger number is better (throughput); false for times. */
  higherIsBetter: boolean;
}

export function printTable(title: string, rows: BenchRow[]): void {
  console.log(`\n${title}`);
  const header = ['metric', 'ours', 'anchor', 'ratio (ours/anchor)'];
  const lines = rows.map((r) => [
    r.metric,
    `${fmt(r.ours)} ${r.unit}`,
    `${fmt(r.anchor)} ${r.unit} (${r.anchorName})`,
    `${(r.ours / r.anchor).toFixed(2)}x${r.higherIsBetter ? '' : ' (lower is better)'}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]?.length ?? 0)));
  const out = (cells: string[]) =>
    console.log(`| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`);
  out(header);
  out(widths.map((w) => '-'.repeat(w)));
  for (const l of lines) out(l);
}

function fmt(n: number): string {
  if (n >= 100) return n.toFixed(0);
  if (n >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}
