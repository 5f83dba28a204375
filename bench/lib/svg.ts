/**
 * A tiny horizontal bar chart in SVG: one bar per ratio, an optional target
 * tick per bar, and a dashed line at 1.0 (= stock bash). No dependencies;
 * the output is deterministic for the same input so the committed copy only
 * changes when the numbers do.
 */

export interface Bar {
  readonly label: string;
  readonly value: number;
  /** Upper bound the value should stay under (drawn as a red tick). */
  readonly target?: number | undefined;
}

export interface BarChartOptions {
  readonly title: string;
  readonly subtitle?: string;
  readonly bars: readonly Bar[];
  /** Suffix after each value label, e.g. "×". */
  readonly unit?: string;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const steps = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
  const mag = 10 ** Math.floor(Math.log10(x));
  for (const s of steps) if (s * mag >= x) return s * mag;
  return 10 * mag;
}

export function barChartSvg(opts: BarChartOptions): string {
  const unit = opts.unit ?? '';
  const labelW = 300;
  const plotW = 440;
  const valueW = 90;
  const barH = 22;
  const gap = 10;
  const top = opts.subtitle ? 62 : 44;
  const axisH = 34;
  const width = labelW + plotW + valueW;
  const height = top + opts.bars.length * (barH + gap) + axisH;
  const finite = opts.bars.flatMap((b) => [b.value, b.target ?? 0]).filter((v) => Number.isFinite(v));
  const max = niceMax(Math.max(1, ...finite) * 1.05);
  const x = (v: number) => labelW + (Math.max(0, Math.min(v, max)) / max) * plotW;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="13">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="12" y="24" font-size="16" font-weight="bold">${esc(opts.title)}</text>`);
  if (opts.subtitle) out.push(`<text x="12" y="44" fill="#555">${esc(opts.subtitle)}</text>`);
  // Grid and axis ticks.
  const ticks = 5;
  const plotBottom = top + opts.bars.length * (barH + gap);
  for (let i = 0; i <= ticks; i++) {
    const v = (max / ticks) * i;
    const xi = x(v).toFixed(1);
    out.push(`<line x1="${xi}" y1="${top - 6}" x2="${xi}" y2="${plotBottom}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${xi}" y="${plotBottom + 18}" text-anchor="middle" fill="#555">${esc(String(Math.round(v * 100) / 100))}${esc(unit)}</text>`);
  }
  opts.bars.forEach((b, i) => {
    const y = top + i * (barH + gap);
    const ok = b.target === undefined || b.value <= b.target;
    const fill = !Number.isFinite(b.value) ? '#bbbbbb' : ok ? '#4a7fc1' : '#d9822b';
    out.push(`<text x="${labelW - 8}" y="${y + barH / 2 + 4}" text-anchor="end">${esc(b.label)}</text>`);
    const w = Number.isFinite(b.value) ? x(b.value) - labelW : 0;
    out.push(`<rect x="${labelW}" y="${y}" width="${Math.max(1, w).toFixed(1)}" height="${barH}" fill="${fill}"/>`);
    if (b.target !== undefined) {
      const tx = x(b.target).toFixed(1);
      out.push(`<line x1="${tx}" y1="${y - 3}" x2="${tx}" y2="${y + barH + 3}" stroke="#c0392b" stroke-width="2"><title>target ≤ ${b.target}${esc(unit)}</title></line>`);
    }
    const shown = Number.isFinite(b.value) ? `${b.value.toFixed(2)}${unit}` : 'n/a';
    out.push(`<text x="${labelW + plotW + 8}" y="${y + barH / 2 + 4}">${esc(shown)}</text>`);
  });
  // 1.0 = stock bash.
  const one = x(1).toFixed(1);
  out.push(`<line x1="${one}" y1="${top - 6}" x2="${one}" y2="${plotBottom}" stroke="#333" stroke-dasharray="4 3"/>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
