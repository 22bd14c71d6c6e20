/**
 * A small SVG chart of a run: one panel per headline figure, one bar per system at its median,
 * with a whisker from min to max. Hand-written SVG, no dependencies and no network.
 */
import type { SystemName } from './clients.ts';
import { formatNumber, metrics, shortName, type MetricName, type Summary } from './report.ts';

/** The panels, with titles short enough for a panel's width. */
const panels: Array<[MetricName, string]> = [
  ['windowedMsgsPerSec', 'windowed publish, msgs/s'],
  ['serialP99Ms', 'serial publish ack p99, ms'],
  ['e2eP99Ms', 'end to end p99 at 5,000/s, ms'],
  ['catchUpMsgsPerSec', 'catch-up consume, msgs/s'],
  ['peakRssMiB', 'server process peak RSS, MiB'],
  ['catchUpCpuSeconds', 'server CPU s to drain the backlog'],
];

const colors: Record<SystemName, string> = { skyrocket: '#d9480f', redis: '#5c7cfa', rabbitmq: '#2f9e44', nats: '#868e96' };

const panelWidth = 300;
const panelHeight = 230;
const columns = 3;
const top = 40;

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function renderChart(summary: Summary, systems: readonly SystemName[], title: string): string {
  const rows = Math.ceil(panels.length / columns);
  const width = panelWidth * columns;
  const height = top + rows * panelHeight + 40;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${escape(title)}</text>`,
  ];
  panels.forEach(([name, title], index) => {
    const x0 = (index % columns) * panelWidth;
    const y0 = top + Math.floor(index / columns) * panelHeight;
    const m = metrics[name];
    out.push(`<text x="${x0 + panelWidth / 2}" y="${y0 + 16}" text-anchor="middle" font-size="12" font-weight="bold">${escape(title)}</text>`);
    out.push(`<text x="${x0 + panelWidth / 2}" y="${y0 + 30}" text-anchor="middle" font-size="10" fill="#666">${m.better} is better · bar = median · line = min–max</text>`);
    const plotTop = y0 + 48;
    const plotBottom = y0 + panelHeight - 40;
    const plotLeft = x0 + 20;
    const plotRight = x0 + panelWidth - 20;
    const values = systems.map((s) => summary[s]?.[name] ?? null);
    const scaleMax = Math.max(1e-9, ...values.map((v) => (v === null ? 0 : v.max)));
    const slot = (plotRight - plotLeft) / systems.length;
    const barWidth = slot * 0.6;
    out.push(`<line x1="${plotLeft}" y1="${plotBottom}" x2="${plotRight}" y2="${plotBottom}" stroke="#333" stroke-width="1"/>`);
    systems.forEach((system, i) => {
      const v = values[i];
      const cx = plotLeft + slot * (i + 0.5);
      out.push(`<text x="${cx}" y="${plotBottom + 14}" text-anchor="middle" font-size="11">${shortName[system]}</text>`);
      if (v === null || v === undefined) {
        out.push(`<text x="${cx}" y="${plotBottom + 28}" text-anchor="middle" font-size="11" fill="#999">n/a</text>`);
        return;
      }
      out.push(`<text x="${cx}" y="${plotBottom + 28}" text-anchor="middle" font-size="11" font-weight="bold">${formatNumber(v.median)}</text>`);
      const y = (value: number): number => plotBottom - (value / scaleMax) * (plotBottom - plotTop);
      const barTop = y(v.median);
      out.push(
        `<rect x="${cx - barWidth / 2}" y="${barTop}" width="${barWidth}" height="${Math.max(0, plotBottom - barTop)}" fill="${colors[system]}"/>`,
      );
      if (v.max > v.min) {
        out.push(`<line x1="${cx}" y1="${y(v.min)}" x2="${cx}" y2="${y(v.max)}" stroke="#111" stroke-width="1.5"/>`);
        out.push(`<line x1="${cx - 5}" y1="${y(v.max)}" x2="${cx + 5}" y2="${y(v.max)}" stroke="#111" stroke-width="1.5"/>`);
        out.push(`<line x1="${cx - 5}" y1="${y(v.min)}" x2="${cx + 5}" y2="${y(v.min)}" stroke="#111" stroke-width="1.5"/>`);
      }
    });
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
