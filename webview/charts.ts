/**
 * The dashboard's charts, drawn with uPlot (canvas: no eval, no inline <style>, 50,000 points without lag):
 * histograms (golden score, each signal; a log axis for a long-tailed signal) and golden score against IFD.
 * uPlot gives the axes, ticks, grid, the cursor and the drag selection; the bars and points are drawn in its
 * draw hook from the bins and points as they are. Colours come from the theme's --vscode-* variables, read
 * again when the theme changes. Dragging over a histogram selects whole bins; dragging over the scatter
 * selects a region; either calls `onBrush` with the ranges, which the page turns into its table's filter.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { SignalBound } from './protocol-types';

/** A histogram: counts[i] records in [edges[i], edges[i + 1]) (the last bin includes its upper edge). */
export interface HistogramData {
  edges: number[];
  counts: number[];
  log: boolean;
  /** Names the x axis, and the ranges of a brush (SignalBound.signal). */
  signal: string;
  xLabel: string;
  /** Bins at or above this value are drawn full, the others faded (the golden score's threshold). */
  threshold?: number;
}

export interface ScatterData {
  /** x: golden score, y: IFD, per record. */
  points: { index: number; x: number; y: number }[];
  xLabel: string;
  yLabel: string;
  log: boolean;
}

export interface Chart {
  /** The chart's element: a figure the caller places. */
  element: HTMLElement;
  /** Draws the brush from the page's ranges (or clears it when none of its signals has one). */
  showBrush(bounds: readonly SignalBound[]): void;
  setThreshold(threshold: number): void;
  destroy(): void;
}

interface Theme {
  text: string;
  muted: string;
  grid: string;
  bar: string;
  barFaded: string;
  point: string;
  marker: string;
}

/** The theme's colours (canvas cannot read var(--…)): each with a fallback for a page outside VS Code. */
function theme(): Theme {
  const style = getComputedStyle(document.body);
  const read = (name: string, fallback: string): string => style.getPropertyValue(name).trim() || fallback;
  const text = read('--vscode-foreground', '#3b3b3b');
  const bar = read('--vscode-charts-blue', '#1a85ff');
  return {
    text,
    muted: read('--vscode-descriptionForeground', text),
    grid: read('--vscode-editorWidget-border', read('--vscode-panel-border', 'rgba(128,128,128,0.35)')),
    bar,
    barFaded: withAlpha(bar, 0.4),
    point: read('--vscode-charts-purple', '#b180d7'),
    marker: read('--vscode-charts-red', '#f14c4c'),
  };
}

/** A #rrggbb colour at the given opacity (other forms are returned as they are). */
function withAlpha(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  const n = parseInt(m[1]!, 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

const charts = new Set<Chart & { redraw(): void }>();

// VS Code swaps the body's class (vscode-light, vscode-dark, vscode-high-contrast) and its variables when the theme changes.
new MutationObserver(() => {
  for (const chart of charts) chart.redraw();
}).observe(document.body, { attributes: true, attributeFilter: ['class', 'style'] });

/** Short tick labels: 3 significant digits, no trailing zeros. */
const tick = (v: number): string => (v === 0 ? '0' : Math.abs(v) >= 1000 || Math.abs(v) < 0.01 ? v.toPrecision(2) : String(Number(v.toPrecision(3))));
const countLabel = (n: number): string => `${n} record${n === 1 ? '' : 's'}`;

/**
 * Ticks of a log axis: 1, 2 and 5 times each power of ten within [min, max] (every integer multiple when that
 * gives fewer than four), so that a range within one decade (IFD 0.3 to 1.2) still has labelled ticks.
 */
export function logTicks(min: number, max: number): number[] {
  const pick = (multiples: number[]): number[] => {
    const ticks: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of multiples) {
        const v = Number((m * 10 ** e).toPrecision(6));
        if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) ticks.push(v);
      }
    }
    return ticks;
  };
  const coarse = pick([1, 2, 5]);
  return coarse.length >= 4 ? coarse : pick([1, 2, 3, 4, 5, 6, 7, 8, 9]);
}

/** The axes, their colours read from the theme at each draw (a theme change redraws them). */
function axes(colours: () => Theme, xLabel: string, yLabel: string, figure: HTMLElement, log: { x?: boolean; y?: boolean } = {}): uPlot.Axis[] {
  const axis = (label: string, isLog: boolean | undefined, which: 'xTicks' | 'yTicks'): uPlot.Axis => ({
    label, stroke: () => colours().text, labelSize: 18, font: '11px sans-serif', labelFont: '12px sans-serif',
    grid: { stroke: () => colours().grid, width: 1 }, ticks: { stroke: () => colours().grid, width: 1, size: 4 },
    // Every tick of a log axis is labelled (uPlot's default keeps only some of them).
    ...(isLog ? { splits: (_u: uPlot, _axis: number, min: number, max: number) => logTicks(min, max), filter: (_u: uPlot, splits: number[]) => splits } : {}),
    values: (_u, splits) => {
      // A log axis with a tick at every multiple labels only 1, 2, 3 and 5 times a power of ten, so that labels never crowd.
      const crowded = isLog && splits.length > 7;
      const labels = splits.map((v) => (v === null || (crowded && ![1, 2, 3, 5].includes(Number((v / 10 ** Math.floor(Math.log10(v) + 1e-9)).toPrecision(3)))) ? '' : tick(v)));
      figure.dataset[which] = labels.join(' '); // the tick labels drawn, for tests and for reading in the DOM
      return labels;
    },
  });
  return [axis(xLabel, log.x, 'xTicks'), { ...axis(yLabel, log.y, 'yTicks'), size: 44 }];
}

/** A figure holding a caption, the chart's box and its tooltip; uPlot sizes itself to the box, and again on every resize. */
function frame(caption: string, height: number): { figure: HTMLElement; box: HTMLElement; tip: HTMLElement; size: () => { width: number; height: number } } {
  const figure = document.createElement('figure');
  figure.className = 'chart';
  const title = document.createElement('figcaption');
  title.textContent = caption;
  const box = document.createElement('div');
  box.className = 'chart-box';
  const tip = document.createElement('div');
  tip.className = 'chart-tip';
  tip.setAttribute('role', 'status');
  tip.hidden = true;
  figure.append(title, box);
  return { figure, box, tip, size: () => ({ width: Math.max(160, Math.floor(box.clientWidth || figure.clientWidth || 320)), height }) };
}

/**
 * A chart kept up: as wide as its box (proportions stay right at every width), redrawn in the theme's colours when
 * the theme changes (`retheme` reads again the colours its drawing uses), until it is destroyed.
 */
function keep(u: uPlot, box: HTMLElement, size: () => { width: number; height: number }, retheme: () => void, own: Omit<Chart, 'destroy'>): Chart {
  let last = 0;
  const observer = new ResizeObserver(() => {
    const next = size();
    if (next.width !== last) {
      last = next.width;
      u.setSize(next);
    }
  });
  observer.observe(box);
  const chart = {
    ...own,
    redraw() {
      retheme();
      u.setSize(size());
      u.redraw(false);
    },
    destroy() {
      observer.disconnect();
      charts.delete(chart);
      u.destroy();
    },
  };
  charts.add(chart);
  return chart;
}

function placeTip(u: uPlot, tip: HTMLElement, left: number, top: number, text: string | null): void {
  tip.hidden = text === null;
  if (text === null) return;
  tip.textContent = text;
  const width = u.over.clientWidth;
  tip.style.left = `${Math.min(left + 10, Math.max(0, width - 180))}px`;
  tip.style.top = `${Math.max(0, top - 28)}px`;
}

/**
 * A histogram with a log or linear x axis. Dragging selects whole bins (the brush snaps to bin edges); the
 * range has no upper bound when it reaches the last bin, so that the highest value is inside it.
 */
export function histogram(data: HistogramData, height: number, onBrush: (bounds: SignalBound[] | null) => void, ariaLabel: string): Chart {
  const { figure, box, tip, size } = frame(data.xLabel, height);
  figure.dataset.signal = data.signal;
  figure.dataset.scale = data.log ? 'log' : 'linear';
  figure.dataset.counts = data.counts.join(' ');
  figure.setAttribute('aria-label', ariaLabel);
  let threshold = data.threshold;
  let t = theme();
  const bins = data.counts.length;
  const max = Math.max(1, ...data.counts);
  const centers = data.counts.map((_, i) => (data.log ? Math.sqrt(data.edges[i]! * data.edges[i + 1]!) : (data.edges[i]! + data.edges[i + 1]!) / 2));
  let brushed: [number, number] | null = null;
  const lo = data.edges[0]!;
  const hi = data.edges[bins]! > lo ? data.edges[bins]! : data.log ? lo * 2 : lo + 1;

  const binAt = (value: number): number => {
    for (let i = 0; i < bins; i++) if (value < data.edges[i + 1]!) return i;
    return bins - 1;
  };
  const options: uPlot.Options = {
    width: size().width, height,
    legend: { show: false },
    scales: {
      x: { time: false, ...(data.log ? { distr: 3, log: 10 } : {}), range: () => [lo, hi] },
      y: { range: () => [0, max * 1.08] },
    },
    axes: axes(() => t, data.xLabel, 'records', figure, { x: data.log }),
    series: [{}, { paths: () => null, points: { show: false } }],
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false }, y: false },
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        const base = u.valToPos(0, 'y', true);
        for (let i = 0; i < bins; i++) {
          const count = data.counts[i]!;
          if (count === 0) continue;
          const x0 = u.valToPos(data.edges[i]!, 'x', true);
          const x1 = u.valToPos(data.edges[i + 1]!, 'x', true);
          const top = u.valToPos(count, 'y', true);
          const gap = Math.min(2 * devicePixelRatio, (x1 - x0) * 0.15);
          ctx.fillStyle = threshold === undefined || data.edges[i]! >= threshold - 1e-9 ? t.bar : t.barFaded;
          ctx.fillRect(x0 + gap / 2, top, Math.max(1, x1 - x0 - gap), base - top);
        }
        if (threshold !== undefined) {
          const x = u.valToPos(threshold, 'x', true);
          ctx.strokeStyle = t.marker;
          ctx.lineWidth = 2 * devicePixelRatio;
          ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
          ctx.beginPath();
          ctx.moveTo(x, u.bbox.top);
          ctx.lineTo(x, u.bbox.top + u.bbox.height);
          ctx.stroke();
        }
        ctx.restore();
      }],
      setCursor: [(u) => {
        const { left, top } = u.cursor;
        if (left === undefined || top === undefined || left < 0) return placeTip(u, tip, 0, 0, null);
        const i = binAt(u.posToVal(left, 'x'));
        placeTip(u, tip, left, top ?? 0, `${tick(data.edges[i]!)}–${tick(data.edges[i + 1]!)}: ${countLabel(data.counts[i]!)}`);
      }],
      setSelect: [(u) => {
        if (u.select.width < 3) return drawBrush(u); // a click: the brush stays as it was
        const first = binAt(u.posToVal(u.select.left, 'x'));
        const last = binAt(u.posToVal(u.select.left + u.select.width, 'x'));
        brushed = [first, last];
        drawBrush(u);
        onBrush([{ signal: data.signal, ...(first > 0 ? { min: round(data.edges[first]!) } : { min: data.edges[0]! }), ...(last < bins - 1 ? { max: round(data.edges[last + 1]!) } : {}) }]);
      }],
    },
  };
  const drawBrush = (u: uPlot): void => {
    if (!brushed) return u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    const left = u.valToPos(data.edges[brushed[0]]!, 'x');
    const right = u.valToPos(data.edges[brushed[1] + 1]!, 'x');
    u.setSelect({ left, top: 0, width: right - left, height: u.over.clientHeight }, false);
  };
  const u = new uPlot(options, [centers, data.counts], box);
  u.over.append(tip);
  u.over.addEventListener('mouseleave', () => placeTip(u, tip, 0, 0, null));
  return keep(u, box, size, () => (t = theme()), {
    element: figure,
    showBrush(bounds: readonly SignalBound[]) {
      const own = bounds.find((b) => b.signal === data.signal);
      brushed = own ? [own.min === undefined ? 0 : binAt(own.min), own.max === undefined ? bins - 1 : binAt(own.max - 1e-12)] : null;
      drawBrush(u);
    },
    setThreshold(value: number) {
      threshold = value;
      figure.dataset.threshold = String(value);
      u.redraw(false);
    },
  });
}

/**
 * Golden score against IFD, a point per record (on a log y axis when every IFD is positive). Hovering names
 * the nearest record; clicking it calls `onPick`; dragging selects a region (a range on each axis).
 */
export function scatterPlot(data: ScatterData, height: number, onBrush: (bounds: SignalBound[] | null) => void, onPick: (index: number) => void): Chart {
  const { figure, box, tip, size } = frame(`${data.xLabel} against ${data.yLabel}`, height);
  figure.dataset.scale = data.log ? 'log' : 'linear';
  let t = theme();
  let yLo = Infinity;
  let yHi = -Infinity;
  for (const p of data.points) {
    if (p.y < yLo) yLo = p.y;
    if (p.y > yHi) yHi = p.y;
  }
  if (!(yHi > yLo)) [yLo, yHi] = data.log ? [yLo / 2 || 0.5, yHi * 2 || 2] : [yLo - 1, yHi + 1];
  // Room at the edges, so that the lowest and the highest point are drawn whole.
  const [yMin, yMax] = data.log ? [yLo / 1.15, yHi * 1.15] : [yLo - (yHi - yLo) * 0.05, yHi + (yHi - yLo) * 0.05];
  figure.dataset.points = String(data.points.length);
  figure.dataset.yRange = `${yMin} ${yMax}`;
  let region: { x: [number, number]; y: [number, number] } | null = null;
  const radius = data.points.length > 5000 ? 1.5 : 3;

  /** The record nearest the cursor, within 8 px. */
  const nearest = (u: uPlot, left: number, top: number): { index: number; x: number; y: number } | undefined => {
    let best: { index: number; x: number; y: number } | undefined;
    let bestDistance = 64;
    for (const p of data.points) {
      const dx = u.valToPos(p.x, 'x') - left;
      const dy = u.valToPos(p.y, 'y') - top;
      const d = dx * dx + dy * dy;
      if (d < bestDistance) [best, bestDistance] = [p, d];
    }
    return best;
  };
  const options: uPlot.Options = {
    width: size().width, height,
    legend: { show: false },
    scales: {
      x: { time: false, range: () => [0, 1] },
      y: { ...(data.log ? { distr: 3, log: 10 } : {}), range: () => [yMin, yMax] },
    },
    axes: axes(() => t, data.xLabel, data.yLabel, figure, { y: data.log }),
    series: [{}, { paths: () => null, points: { show: false } }],
    cursor: { drag: { x: true, y: true, setScale: false }, points: { show: false } },
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.fillStyle = t.point;
        const r = radius * devicePixelRatio;
        // One path for every point, filled once: 50,000 points draw in a few milliseconds.
        ctx.beginPath();
        for (const p of data.points) {
          const x = u.valToPos(p.x, 'x', true);
          const y = u.valToPos(p.y, 'y', true);
          ctx.moveTo(x + r, y);
          ctx.arc(x, y, r, 0, 2 * Math.PI);
        }
        ctx.fill();
        ctx.restore();
      }],
      setCursor: [(u) => {
        const { left, top } = u.cursor;
        if (left === undefined || top === undefined || left < 0) return placeTip(u, tip, 0, 0, null);
        const p = nearest(u, left, top);
        figure.dataset.hovered = p ? String(p.index) : '';
        placeTip(u, tip, left, top, p ? `record ${p.index}: golden score ${p.x.toFixed(2)}, ${data.yLabel.replace(/ \(log\)$/, '')} ${tick(p.y)}` : null);
      }],
      setSelect: [(u) => {
        if (u.select.width < 3 || u.select.height < 3) return drawRegion(u);
        const { left, top, width, height: h } = u.select;
        const xs = [u.posToVal(left, 'x'), u.posToVal(left + width, 'x')] as const;
        const ys = [u.posToVal(top + h, 'y'), u.posToVal(top, 'y')] as const;
        region = { x: [round(Math.max(0, xs[0])), round(xs[1])], y: [round(ys[0]), round(ys[1])] };
        drawRegion(u);
        onBrush([
          { signal: 'golden', min: region.x[0], ...(xs[1] < 1 ? { max: region.x[1] } : {}) },
          { signal: 'ifd', min: region.y[0], max: region.y[1] },
        ]);
      }],
    },
  };
  const drawRegion = (u: uPlot): void => {
    if (!region) return u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    const left = u.valToPos(region.x[0], 'x');
    const right = u.valToPos(Math.min(1, region.x[1]), 'x');
    const top = u.valToPos(Math.min(yMax, region.y[1]), 'y');
    const bottom = u.valToPos(Math.max(yMin, region.y[0]), 'y');
    u.setSelect({ left, top, width: right - left, height: bottom - top }, false);
  };
  const u = new uPlot(options, [[0, 1], [yLo, yHi]], box);
  u.over.append(tip);
  u.over.addEventListener('mouseleave', () => placeTip(u, tip, 0, 0, null));
  u.over.addEventListener('click', (e) => {
    const rect = u.over.getBoundingClientRect();
    const p = nearest(u, e.clientX - rect.left, e.clientY - rect.top);
    if (p) onPick(p.index);
  });
  return keep(u, box, size, () => (t = theme()), {
    element: figure,
    showBrush(bounds: readonly SignalBound[]) {
      const x = bounds.find((b) => b.signal === 'golden');
      const y = bounds.find((b) => b.signal === 'ifd');
      region = x && y ? { x: [x.min ?? 0, x.max ?? 1], y: [y.min ?? yMin, y.max ?? yMax] } : null;
      drawRegion(u);
    },
    setThreshold() {},
  });
}

/** A brushed bound as people and file names read it: 4 significant digits. */
function round(value: number): number {
  return Number(value.toPrecision(4));
}

/** The edges of a histogram of `bins` bins over [from, to], log-spaced for a log scale (as the server bins a signal). */
export function binEdges(from: number, to: number, bins: number, log: boolean): number[] {
  return Array.from({ length: bins + 1 }, (_, i) => (i === bins ? to : log ? from * (to / from) ** (i / bins) : from + ((to - from) * i) / bins));
}
