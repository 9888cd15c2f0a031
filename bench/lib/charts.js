'use strict';
// Horizontal bar charts as SVG, rendered to PNG with sharp (librsvg): no browser, no canvas.
//
// barChart({ title, subtitle, legend: [{name, color}], groups: [{label, bars: [{label?, segments: [{value, color}], text}]}],
//            unit, refLine: {value, label}, note }) -> SVG string. Bars with several segments are stacked.
const sharp = require('sharp');

const FONT = 'DejaVu Sans, Liberation Sans, Arial, sans-serif';
const COLORS = {
  ours: '#1f6fb4',
  oracle: '#e08a1e',
  grey: '#8a8f98',
  green: '#2e9d4d',
  red: '#c9452f',
  purple: '#7a52b3',
  teal: '#2a9d8f',
  light: '#9cc3e6',
  lightOracle: '#f3c48a',
};

function esc(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function niceStep(max, ticks = 5) {
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const n = raw / mag;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
}

function fmtTick(v) {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return `${Math.round(v / 100) / 10}k`;
  if (Math.abs(v) < 1) return String(Math.round(v * 100) / 100);
  return String(Math.round(v * 10) / 10);
}

function barChart(spec) {
  const width = spec.width || 960;
  const labelW = spec.labelWidth || 250;
  const textW = spec.textWidth || 230;
  const plotX = labelW + 10,
    plotW = width - plotX - textW - 10;
  const barH = spec.barHeight || 20,
    barGap = 5,
    groupGap = 16;
  const top = 56 + (spec.subtitle ? 20 : 0) + (spec.legend && spec.legend.length ? 26 : 0);
  let maxValue = spec.xMax || 0;
  for (const g of spec.groups)
    for (const b of g.bars)
      maxValue = Math.max(
        maxValue,
        b.segments.reduce((a, s) => a + (s.value || 0), 0),
      );
  if (spec.refLine) maxValue = Math.max(maxValue, spec.refLine.value * 1.1);
  maxValue = maxValue || 1;
  const step = niceStep(maxValue);
  const axisMax = Math.ceil((maxValue * 1.02) / step) * step;
  const x = (v) => plotX + (v / axisMax) * plotW;

  const parts = [];
  let y = top;
  for (const g of spec.groups) {
    const groupTop = y;
    for (const b of g.bars) {
      let acc = 0;
      for (const s of b.segments) {
        const w = Math.max(0, x(acc + (s.value || 0)) - x(acc));
        parts.push(`<rect x="${x(acc).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${s.color}"/>`);
        acc += s.value || 0;
      }
      if (b.label)
        parts.push(`<text x="${plotX - 6}" y="${y + barH / 2 + 4}" font-size="11" fill="#555" text-anchor="end">${esc(b.label)}</text>`);
      if (b.text)
        parts.push(`<text x="${(x(acc) + 5).toFixed(1)}" y="${y + barH / 2 + 4}" font-size="12" fill="#222">${esc(b.text)}</text>`);
      y += barH + barGap;
    }
    const mid = (groupTop + y - barGap) / 2;
    const lines = String(g.label).split('\n');
    const hasBarLabels = g.bars.some((b) => b.label);
    lines.forEach((line, i) =>
      parts.push(
        `<text x="${hasBarLabels ? 10 : labelW}" y="${mid + 4 + (i - (lines.length - 1) / 2) * 14}" font-size="13" font-weight="bold" fill="#222" text-anchor="${hasBarLabels ? 'start' : 'end'}">${esc(line)}</text>`,
      ),
    );
    y += groupGap - barGap;
  }
  const bottom = y;
  const grid = [];
  for (let v = 0; v <= axisMax + 1e-9; v += step) {
    grid.push(`<line x1="${x(v).toFixed(1)}" y1="${top - 6}" x2="${x(v).toFixed(1)}" y2="${bottom}" stroke="#e3e3e3"/>`);
    grid.push(`<text x="${x(v).toFixed(1)}" y="${bottom + 16}" font-size="11" fill="#555" text-anchor="middle">${fmtTick(v)}</text>`);
  }
  if (spec.unit)
    grid.push(`<text x="${plotX + plotW / 2}" y="${bottom + 34}" font-size="12" fill="#333" text-anchor="middle">${esc(spec.unit)}</text>`);
  if (spec.refLine) {
    const rx = x(spec.refLine.value).toFixed(1);
    grid.push(`<line x1="${rx}" y1="${top - 10}" x2="${rx}" y2="${bottom}" stroke="#c9452f" stroke-width="1.5" stroke-dasharray="5,3"/>`);
    if (spec.refLine.label)
      grid.push(`<text x="${rx}" y="${top - 13}" font-size="11" fill="#c9452f" text-anchor="middle">${esc(spec.refLine.label)}</text>`);
  }
  const legend = [];
  if (spec.legend && spec.legend.length) {
    let lx = 16;
    const ly = 56 + (spec.subtitle ? 20 : 0) - 14;
    for (const item of spec.legend) {
      legend.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="14" fill="${item.color}"/>`);
      legend.push(`<text x="${lx + 20}" y="${ly + 1}" font-size="12" fill="#222">${esc(item.name)}</text>`);
      lx += 34 + item.name.length * 7.2;
    }
  }
  const noteLines = spec.note ? String(spec.note).split('\n') : [];
  const height = bottom + (spec.unit ? 44 : 26) + noteLines.length * 15 + 6;
  const notes = noteLines.map(
    (line, i) => `<text x="16" y="${bottom + (spec.unit ? 44 : 26) + 10 + i * 15}" font-size="11" fill="#666">${esc(line)}</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="16" y="28" font-size="18" font-weight="bold" fill="#111">${esc(spec.title)}</text>
${spec.subtitle ? `<text x="16" y="48" font-size="12" fill="#555">${esc(spec.subtitle)}</text>` : ''}
${legend.join('\n')}
${grid.join('\n')}
${parts.join('\n')}
${notes.join('\n')}
</svg>`;
}

async function writePng(svg, file) {
  await sharp(Buffer.from(svg), { density: 144 }).png({ compressionLevel: 9 }).toFile(file);
}

module.exports = { barChart, writePng, COLORS };
