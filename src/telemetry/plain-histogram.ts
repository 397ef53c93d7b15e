/**
 * A cumulative histogram for the per-request hot path, rendered as Prometheus text by itself.
 * The OpenTelemetry SDK hashes (and sorts) the attributes of every recorded value; here a series
 * is found by the identity of a cached label object, and recording is a bucket search and three
 * additions. Buckets are upper-inclusive (`le`), as in Prometheus and OpenTelemetry.
 */
export class PlainHistogram {
  private readonly series = new Map<Readonly<Record<string, string>>, { counts: Float64Array; sum: number; count: number }>();
  private readonly leLabels: string[];

  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    this.leLabels = [...bounds.map((b) => String(b)), '+Inf'];
  }

  /** Records a value under a label object; pass the same object for the same labels (cache it). */
  record(value: number, labels: Readonly<Record<string, string>>): void {
    let s = this.series.get(labels);
    if (!s) this.series.set(labels, (s = { counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }));
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    s.counts[i]++;
    s.sum += value;
    s.count++;
  }

  /** The Prometheus text exposition of this histogram (empty when nothing was recorded). */
  render(): string {
    if (this.series.size === 0) return '';
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [labels, s] of this.series) {
      const base = Object.entries(labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      const sep = base ? ',' : '';
      let cumulative = 0;
      for (let i = 0; i < s.counts.length; i++) {
        cumulative += s.counts[i];
        lines.push(`${this.name}_bucket{${base}${sep}le="${this.leLabels[i]}"} ${cumulative}`);
      }
      const braces = base ? `{${base}}` : '';
      lines.push(`${this.name}_sum${braces} ${s.sum}`, `${this.name}_count${braces} ${s.count}`);
    }
    return lines.join('\n') + '\n';
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
