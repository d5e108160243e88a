/**
 * The dashboard page (bundled as dist/webview.js, a browser script): histogram of golden scores, a
 * threshold with the live count and share at or above it, a chart per signal and golden score against
 * IFD (click a point to reveal its record), the record table (a column per signal, sorted and paged by
 * the server, click a row to reveal it), and the anchor effects. Talks only to the extension, through
 * postMessage (messages.ts). Everything from the dataset is set with textContent, never as HTML.
 */
import {
  provideVSCodeDesignSystem,
  vsCodeButton,
  vsCodeCheckbox,
  vsCodeDataGrid,
  vsCodeDataGridCell,
  vsCodeDataGridRow,
  vsCodeDivider,
  vsCodePanels,
  vsCodePanelTab,
  vsCodePanelView,
} from '@vscode/webview-ui-toolkit';
import {
  HISTOGRAM_BINS,
  PAGE_SIZE,
  type AnchorEffectsResult,
  type DistributionResult,
  type HostMessage,
  type ScatterResult,
  type SignalChart,
  type TablePageResult,
  type TableQuery,
  type TableRow,
  type TableSortKey,
  type WebviewMessage,
} from './messages';

provideVSCodeDesignSystem().register(
  vsCodeButton(), vsCodeCheckbox(), vsCodeDataGrid(), vsCodeDataGridRow(), vsCodeDataGridCell(), vsCodeDivider(),
  vsCodePanels(), vsCodePanelTab(), vsCodePanelView(),
);

interface VsCodeApi {
  postMessage(message: WebviewMessage): void;
  getState(): SavedState | undefined;
  setState(state: SavedState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

/** What survives the panel being hidden and shown again. */
interface SavedState {
  threshold: number;
  query: TableQuery;
  onlyAboveThreshold: boolean;
}

const vscode = acquireVsCodeApi();
const saved = vscode.getState();
let threshold = saved?.threshold ?? 0.5;
let onlyAboveThreshold = saved?.onlyAboveThreshold ?? false;
let query: TableQuery = saved?.query ?? { offset: 0, limit: PAGE_SIZE, sortBy: 'goldenScore', descending: true };
let distribution: DistributionResult | undefined;
let anchorEffects: AnchorEffectsResult | undefined;
let scatter: ScatterResult | undefined;
let anchorSort: { key: 'index' | 'winRate' | 'meanDelta'; descending: boolean } = { key: 'winRate', descending: true };
let pageSeq = 0;

const post = (message: WebviewMessage): void => vscode.postMessage(message);
const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`dashboard page has no #${id}`);
  return element as T;
};
const SVG = 'http://www.w3.org/2000/svg';

function element<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K];
function element(tag: string, text?: string, className?: string): HTMLElement;
function element(tag: string, text?: string, className?: string): HTMLElement {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

function saveState(): void {
  vscode.setState({ threshold, query, onlyAboveThreshold });
}

// ---------------------------------------------------------------------------------------------
// Summary and histogram

function renderSummary(dataset: string): void {
  byId('dataset').textContent = dataset;
  const d = distribution!;
  const parts = [`${d.scored} of ${d.total} records scored`];
  if (d.stale > 0) parts.push(`${d.stale} stale`);
  if (d.meanGoldenScore !== null) parts.push(`mean golden score ${d.meanGoldenScore.toFixed(3)}`);
  byId('summary').textContent = parts.join(' · ');
}

function renderHistogram(): void {
  const svg = byId('histogram-chart') as unknown as SVGSVGElement;
  svg.replaceChildren();
  const counts = distribution?.counts ?? [];
  const bins = counts.length || HISTOGRAM_BINS;
  const max = Math.max(1, ...counts);
  const width = 400;
  const height = 120;
  const slot = width / bins;
  counts.forEach((count, i) => {
    const from = i / bins;
    const to = (i + 1) / bins;
    const barHeight = (count / max) * (height - 4);
    const rect = document.createElementNS(SVG, 'rect');
    rect.setAttribute('x', String(i * slot + 1));
    rect.setAttribute('width', String(Math.max(1, slot - 2)));
    rect.setAttribute('y', String(height - barHeight));
    rect.setAttribute('height', String(barHeight));
    rect.setAttribute('class', 'bar');
    rect.dataset.bin = String(i);
    rect.dataset.count = String(count);
    rect.dataset.from = from.toFixed(2);
    const title = document.createElementNS(SVG, 'title');
    title.textContent = `${from.toFixed(2)}–${to.toFixed(2)}: ${count} record${count === 1 ? '' : 's'}`;
    rect.append(title);
    svg.append(rect);
  });
  const marker = document.createElementNS(SVG, 'line');
  marker.setAttribute('id', 'threshold-marker');
  marker.setAttribute('y1', '0');
  marker.setAttribute('y2', String(height));
  svg.append(marker);
  renderThreshold();
}

/** Records with a current golden score at or above `t`, counted from the descending list in memory. */
function countAtOrAbove(scores: readonly number[], t: number): number {
  let lo = 0;
  let hi = scores.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (scores[mid]! >= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function renderThreshold(): void {
  (byId('threshold') as HTMLInputElement).value = String(threshold);
  byId('threshold-value').textContent = threshold.toFixed(2);
  const scores = distribution?.goldenScores ?? [];
  const count = countAtOrAbove(scores, threshold);
  const share = scores.length > 0 ? (100 * count) / scores.length : 0;
  const countText = byId('threshold-count');
  countText.dataset.count = String(count);
  countText.dataset.share = share.toFixed(1);
  countText.textContent = scores.length === 0
    ? 'No records have a current golden score yet: run Nuggets: Score Dataset.'
    : `${count} of ${scores.length} scored records (${share.toFixed(1)}%) at or above ${threshold.toFixed(2)}`;
  const bins = distribution?.counts.length || HISTOGRAM_BINS;
  for (const rect of document.querySelectorAll<SVGRectElement>('#histogram-chart rect.bar')) {
    // A bin is highlighted when all of it lies at or above the threshold.
    rect.classList.toggle('above', Number(rect.dataset.bin) / bins >= threshold - 1e-9);
  }
  const marker = document.getElementById('threshold-marker');
  if (marker) {
    marker.setAttribute('x1', String(threshold * 400));
    marker.setAttribute('x2', String(threshold * 400));
  }
}

// ---------------------------------------------------------------------------------------------
// Record table

interface RecordColumn { title: string; sortBy?: TableSortKey; cell: (row: TableRow) => string; className?: string; width: string }

/** The table's columns: the golden score's, then one per signal the server declares, then the text. */
function recordColumns(): RecordColumn[] {
  return [
    { title: '#', sortBy: 'index', cell: (row) => String(row.index + 1), className: 'number', width: '3.5em' },
    { title: 'Score', sortBy: 'goldenScore', cell: (row) => (row.score ? `${row.score.goldenScore.toFixed(2)}${row.stale ? ' (stale)' : ''}` : '—'), className: 'number', width: '6em' },
    { title: 'Wins', sortBy: 'wins', cell: (row) => (row.score ? `${row.score.wins}/${row.score.anchors}` : '—'), className: 'number', width: '4.5em' },
    { title: 'Mean Δ', sortBy: 'meanDelta', cell: (row) => (row.score ? row.score.meanDelta.toFixed(3) : '—'), className: 'number', width: '6em' },
    ...(distribution?.signals ?? []).map((signal): RecordColumn => ({ title: signal.label, sortBy: signal.name, cell: (row) => row.signals?.[signal.name] ?? '—', className: 'number', width: '6em' })),
    { title: 'Instruction', cell: (row) => (row.input ? `${row.instruction} — ${row.input}` : row.instruction), width: '2fr' },
    { title: 'Output', cell: (row) => row.output, width: '1fr' },
  ];
}

// ---------------------------------------------------------------------------------------------
// Signals: a histogram per signal, and golden score against IFD

function renderSignalCharts(): void {
  const box = byId('signal-charts');
  box.replaceChildren(...(distribution?.signals ?? []).map(signalChart));
}

function signalChart(signal: SignalChart): HTMLElement {
  const figure = element('figure', undefined, 'signal-chart');
  figure.dataset.signal = signal.name;
  const median = signal.summary.median;
  const caption = element('figcaption', `${signal.label}${signal.unit ? ` (${signal.unit})` : ''}: median ${median === null ? '—' : median.toPrecision(3)}, ${signal.from.toPrecision(3)}–${signal.to.toPrecision(3)}${signal.missing ? `, ${signal.missing} missing` : ''}`);
  caption.title = signal.description;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 200 60');
  svg.setAttribute('preserveAspectRatio', 'none');
  const max = Math.max(1, ...signal.counts);
  const slot = 200 / Math.max(1, signal.counts.length);
  signal.counts.forEach((count, i) => {
    const rect = document.createElementNS(SVG, 'rect');
    const h = (count / max) * 58;
    rect.setAttribute('x', String(i * slot + 0.5));
    rect.setAttribute('width', String(Math.max(0.5, slot - 1)));
    rect.setAttribute('y', String(60 - h));
    rect.setAttribute('height', String(h));
    rect.setAttribute('class', 'bar');
    rect.dataset.count = String(count);
    svg.append(rect);
  });
  figure.append(svg, caption);
  return figure;
}

function renderScatter(): void {
  const svg = byId('scatter-chart') as unknown as SVGSVGElement;
  svg.replaceChildren();
  const points = scatter?.points ?? [];
  byId('scatter-note').textContent = points.length === 0
    ? 'No record has both a golden score and an IFD yet.'
    : `${points.length} records; IFD from ${Math.min(...points.map((p) => p.y)).toPrecision(3)} (bottom) to ${Math.max(...points.map((p) => p.y)).toPrecision(3)} (top). Click a point to show its record.`;
  if (points.length === 0) return;
  const low = Math.min(...points.map((p) => p.y));
  const high = Math.max(...points.map((p) => p.y));
  for (const p of points) {
    const dot = document.createElementNS(SVG, 'circle');
    dot.setAttribute('cx', String(4 + p.x * 392));
    dot.setAttribute('cy', String(196 - (high > low ? (p.y - low) / (high - low) : 0.5) * 192));
    dot.setAttribute('r', '3');
    dot.dataset.index = String(p.index);
    const title = document.createElementNS(SVG, 'title');
    title.textContent = `record ${p.index + 1}: golden ${p.x.toFixed(2)}, IFD ${p.y.toPrecision(3)}`;
    dot.append(title);
    dot.addEventListener('click', () => post({ type: 'reveal', index: p.index }));
    svg.append(dot);
  }
}

function requestPage(): void {
  query = { ...query, limit: PAGE_SIZE };
  if (onlyAboveThreshold) query.minScore = threshold;
  else delete query.minScore;
  saveState();
  post({ type: 'page', seq: ++pageSeq, query });
}

function headerRow(columns: { title: string; sortKey?: string }[], sorted: { key: string; descending: boolean }, onSort: (key: string) => void): HTMLElement {
  const header = element('vscode-data-grid-row');
  header.setAttribute('row-type', 'header');
  columns.forEach((column, i) => {
    const arrow = column.sortKey === sorted.key ? (sorted.descending ? ' ▼' : ' ▲') : '';
    const cell = element('vscode-data-grid-cell', column.title + arrow);
    cell.setAttribute('cell-type', 'columnheader');
    cell.setAttribute('grid-column', String(i + 1));
    if (column.sortKey) {
      const key = column.sortKey;
      cell.classList.add('sortable');
      cell.dataset.sort = key;
      cell.setAttribute('aria-sort', column.sortKey === sorted.key ? (sorted.descending ? 'descending' : 'ascending') : 'none');
      cell.title = `Sort by ${column.title.toLowerCase()}`;
      cell.addEventListener('click', () => onSort(key));
      cell.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') onSort(key);
      });
    }
    header.append(cell);
  });
  return header;
}

function renderPage(page: TablePageResult): void {
  const grid = byId('records-grid');
  const columns = recordColumns();
  grid.setAttribute('grid-template-columns', columns.map((c) => c.width).join(' '));
  grid.replaceChildren(headerRow(columns.map((c) => ({ title: c.title, sortKey: c.sortBy })), { key: query.sortBy, descending: query.descending }, (key) => {
    const sortBy = key as TableSortKey;
    // A new column starts with its most useful order: best scores first, dataset order from the top.
    query = { ...query, offset: 0, descending: sortBy === query.sortBy ? !query.descending : sortBy !== 'index', sortBy };
    requestPage();
  }));
  for (const record of page.rows) {
    const row = element('vscode-data-grid-row', undefined, 'record');
    row.dataset.index = String(record.index);
    if (record.stale) row.classList.add('stale');
    row.title = 'Click to show this record in the editor';
    columns.forEach((column, i) => {
      const cell = element('vscode-data-grid-cell', column.cell(record), column.className);
      cell.setAttribute('grid-column', String(i + 1));
      row.append(cell);
    });
    const reveal = (): void => post({ type: 'reveal', index: record.index, range: record.range });
    row.addEventListener('click', reveal);
    row.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') reveal();
    });
    grid.append(row);
  }
  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.rows.length;
  const info = byId('page-info');
  info.textContent = page.total === 0 ? 'No records match.' : `Records ${first}–${last} of ${page.total}`;
  info.dataset.total = String(page.total);
  info.dataset.offset = String(page.offset);
  (byId('prev-page') as HTMLButtonElement).disabled = page.offset <= 0;
  (byId('next-page') as HTMLButtonElement).disabled = last >= page.total;
}

// ---------------------------------------------------------------------------------------------
// Anchor effects

function renderAnchors(): void {
  const effects = anchorEffects;
  const grid = byId('anchors-grid');
  const note = byId('anchors-note');
  if (!effects || !effects.anchorSet) {
    grid.replaceChildren();
    note.textContent = 'No anchor set yet: Nuggets: Score Dataset chooses one.';
    return;
  }
  note.textContent = `${effects.anchorSet.count} anchors, statistics over ${effects.candidates} scored record${effects.candidates === 1 ? '' : 's'}. Win rate: share of records that made the anchor's response more likely.`;
  const columns = [
    { title: '#', sortKey: 'index' },
    { title: 'Anchor' },
    { title: 'Win rate', sortKey: 'winRate' },
    { title: 'Mean Δ (nats)', sortKey: 'meanDelta' },
  ];
  const anchors = [...effects.anchors].sort((a, b) => (anchorSort.descending ? -1 : 1) * (a[anchorSort.key] - b[anchorSort.key]) || a.index - b.index);
  grid.replaceChildren(headerRow(columns, anchorSort, (key) => {
    const k = key as typeof anchorSort.key;
    anchorSort = { key: k, descending: k === anchorSort.key ? !anchorSort.descending : k !== 'index' };
    renderAnchors();
  }));
  for (const anchor of anchors) {
    const row = element('vscode-data-grid-row', undefined, 'anchor');
    row.dataset.index = String(anchor.index);
    const cells = [
      element('vscode-data-grid-cell', String(anchor.index + 1), 'number'),
      element('vscode-data-grid-cell', anchor.input ? `${anchor.instruction} — ${anchor.input}` : anchor.instruction),
      element('vscode-data-grid-cell', undefined, 'number'),
      element('vscode-data-grid-cell', anchor.meanDelta.toFixed(3), 'number'),
    ];
    const meter = element('span', undefined, 'meter');
    const fill = element('span', undefined, 'meter-fill');
    fill.style.width = `${(100 * anchor.winRate).toFixed(1)}%`;
    meter.append(fill);
    cells[2]!.append(meter, element('span', `${(100 * anchor.winRate).toFixed(0)}%`, 'meter-label'));
    cells.forEach((cell, i) => {
      cell.setAttribute('grid-column', String(i + 1));
      row.append(cell);
    });
    grid.append(row);
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

window.addEventListener('message', (event: MessageEvent<HostMessage>) => {
  const message = event.data;
  switch (message?.type) {
    case 'state':
      distribution = message.distribution;
      anchorEffects = message.anchorEffects;
      scatter = message.scatter;
      byId('error').textContent = '';
      renderSummary(message.dataset);
      renderHistogram();
      renderSignalCharts();
      renderScatter();
      renderAnchors();
      requestPage();
      break;
    case 'page':
      if (message.seq === pageSeq) renderPage(message.page);
      break;
    case 'error':
      byId('error').textContent = message.message;
      break;
  }
});

const slider = byId('threshold') as HTMLInputElement;
let filterTimer: ReturnType<typeof setTimeout> | undefined;
slider.addEventListener('input', () => {
  threshold = Number(slider.value);
  renderThreshold();
  saveState();
  if (onlyAboveThreshold) {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => {
      query = { ...query, offset: 0 };
      requestPage();
    }, 150);
  }
});
const filter = byId('only-above');
if (onlyAboveThreshold) filter.setAttribute('checked', '');
filter.addEventListener('change', () => {
  onlyAboveThreshold = (filter as HTMLInputElement).checked;
  query = { ...query, offset: 0 };
  requestPage();
});
byId('prev-page').addEventListener('click', () => {
  query = { ...query, offset: Math.max(0, query.offset - PAGE_SIZE) };
  requestPage();
});
byId('next-page').addEventListener('click', () => {
  query = { ...query, offset: query.offset + PAGE_SIZE };
  requestPage();
});

renderThreshold();
post({ type: 'ready' });
