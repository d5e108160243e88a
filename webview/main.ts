/**
 * The dashboard page (bundled as dist/webview.js, a browser script): histogram of golden scores, a
 * threshold with the live count and share at or above it, a chart per signal and golden score against
 * IFD (charts.ts: uPlot, with axes, log scales for long tails, tooltips naming records, and brushing), the
 * selection (brushed ranges and column filters) with its Clear Selection, the record table over every record
 * (virtual-table.ts: rows asked of the server as they come into view, sorted and filtered by it), the record
 * view beside the table (or under it when narrow): the whole record, its turns, its problems, its nearest
 * neighbours and its effect on every anchor; the anchor effects, and the ways out (a subset at the threshold,
 * an export of the scores, both of the selection when there is one). The header names the model and the
 * anchor set. Talks only to the extension, through postMessage (messages.ts). Everything from the dataset is
 * set with textContent, never as HTML.
 */
import {
  provideVSCodeDesignSystem,
  vsCodeButton,
  vsCodeCheckbox,
  vsCodeDivider,
  vsCodeDropdown,
  vsCodeOption,
  vsCodePanels,
  vsCodePanelTab,
  vsCodePanelView,
} from '@vscode/webview-ui-toolkit';
import { binEdges, histogram, scatterPlot, type Chart } from './charts';
import {
  BLOCK_SIZE,
  HISTOGRAM_BINS,
  type AnchorEffectsResult,
  type DistributionResult,
  type FileProblem,
  type HostMessage,
  type NeighboursResult,
  type ModelInfo,
  type RecordFilter,
  type ScatterResult,
  type SignalBound,
  type TablePageResult,
  type TableQuery,
  type TableRow,
  type TableSortKey,
  type WebviewMessage,
} from './messages';
import { renderComparison } from './compare';
import { parseRange, rangeText, renderTable, type Column } from './table';
import { anchorText, byId, decorateRecordRow, element, indexCell, markRecordRows, nextSort, RecordView, recordFilterOf, sentence } from './record-view';
import { VirtualTable } from './virtual-table';

provideVSCodeDesignSystem().register(
  vsCodeButton(), vsCodeCheckbox(), vsCodeDivider(), vsCodeDropdown(), vsCodeOption(),
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
  sort: { sortBy: TableSortKey; descending: boolean };
  onlyAboveThreshold: boolean;
  bounds: SignalBound[];
  search: { instruction: string; output: string };
}

const vscode = acquireVsCodeApi();
const saved = vscode.getState();
let threshold = saved?.threshold ?? 0.5;
let onlyAboveThreshold = saved?.onlyAboveThreshold ?? false;
let sort: { sortBy: TableSortKey; descending: boolean } = saved?.sort ?? { sortBy: 'goldenScore', descending: true };
/** The selection: a range per signal (brushed on a chart or typed in a column's filter), and the text searches. */
const bounds = new Map<string, SignalBound>((saved?.bounds ?? []).map((b) => [b.signal, b]));
const search = { instruction: saved?.search?.instruction ?? '', output: saved?.search?.output ?? '' };
let distribution: DistributionResult | undefined;
/** Why the dataset's file does not parse now; null while it does. */
let fileProblem: FileProblem | null = null;
let anchorEffects: AnchorEffectsResult | undefined;
let scatter: ScatterResult | undefined;
let anchorSort: { key: 'index' | 'winRate' | 'meanDelta'; descending: boolean } = { key: 'winRate', descending: true };
/** The record view beside the table (record-view.ts): the record it shows, while it is open. */
const recordView = new RecordView();
/** The row last clicked: it stays marked. */
let markedIndex: number | undefined;
/** Widths the user gave columns by resizing them, per table. */
const recordWidths = new Map<string, number>();
const anchorWidths = new Map<string, number>();
/** Answers to an older query are dropped: each query has its own number. */
let querySeq = 0;
/** Every chart drawn (a brush shows on each), and the golden-score histogram among them (it marks the threshold). */
let charts: Chart[] = [];
let goldenChart: Chart | undefined;

const post = (message: WebviewMessage): void => vscode.postMessage(message);
function saveState(): void {
  vscode.setState({ threshold, sort, onlyAboveThreshold, bounds: [...bounds.values()], search });
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
  const slot = byId('histogram-chart');
  const counts = distribution?.counts ?? [];
  const chart = histogram({
    edges: binEdges(0, 1, counts.length || HISTOGRAM_BINS, false), counts, log: false, signal: 'golden', xLabel: 'golden score', threshold,
  }, 170, brush, 'Records per golden score bin');
  slot.replaceChildren(chart.element);
  charts.push(chart);
  goldenChart = chart;
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
  // Problem records are never written: the count is what Write Subset would write.
  const problems = (distribution?.problems ?? []).filter((p) => p.goldenScore !== null && p.goldenScore >= threshold).length;
  const count = countAtOrAbove(scores, threshold) - problems;
  const share = scores.length > 0 ? (100 * count) / scores.length : 0;
  const countText = byId('threshold-count');
  countText.dataset.count = String(count);
  countText.dataset.share = share.toFixed(1);
  renderActions(count);
  countText.textContent = scores.length === 0
    ? 'No records have a current golden score yet: run Nuggets: Score Dataset.'
    : `${count} of ${scores.length} scored records (${share.toFixed(1)}%) at or above ${threshold.toFixed(2)}${problems > 0 ? `, not counting ${problems} problem record${problems === 1 ? '' : 's'}, which are never selected` : ''}`;
  // Bins at or above the threshold are drawn full, the others faded; a dashed line marks the threshold.
  goldenChart?.setThreshold(threshold);
}

/**
 * Write Subset and Export Scores say why they are unavailable, beside them, instead of refusing after a click:
 * a file that does not parse, records without a current score (a subset would leave them out unseen), a
 * threshold that keeps nothing.
 */
function renderActions(count: number): void {
  const total = distribution?.total ?? 0;
  const scored = distribution?.scored ?? 0;
  const broken = fileProblem ? 'The file does not parse: fix it first (the scores shown are from before the problem).' : '';
  const writeWhy = broken
    || (scored < total ? `${total - scored} of ${total} records have no current golden score: run Nuggets: Score Dataset first, so that no record is left out unseen.` : '')
    || (count === 0 ? `No record is at or above ${threshold.toFixed(2)}: lower the threshold.` : '');
  const exportWhy = broken || (scored === 0 ? 'No record has a current golden score yet: run Nuggets: Score Dataset first.' : '');
  const ranges = [...bounds.values()].map(rangeLabel).join(', ');
  const within = ranges ? `Of the selection only: ${ranges}${search.instruction || search.output ? ' (text searches narrow only the table)' : ''}.` : '';
  (byId('write-subset') as HTMLButtonElement).disabled = writeWhy !== '';
  byId('write-subset-why').textContent = writeWhy || within;
  (byId('export-scores') as HTMLButtonElement).disabled = exportWhy !== '';
  byId('export-why').textContent = exportWhy || within;
}

/** The banner of a file that does not parse: where, and what is wrong. */
function renderFileProblem(): void {
  const banner = byId('file-problem');
  banner.hidden = !fileProblem;
  banner.replaceChildren();
  if (!fileProblem) return;
  const what = document.createElement('bdi');
  what.textContent = fileProblem.message;
  banner.append(`This file does not parse (line ${fileProblem.line}, column ${fileProblem.column}): `, what, '. Its last scores stay shown; fix the file to score it, write a subset or export.');
}

// ---------------------------------------------------------------------------------------------
// Problem records: never selected

/** How many problem records the dataset has and which (the first 50), each revealing its record when clicked. */
function renderProblems(): void {
  const problems = distribution?.problems ?? [];
  const section = byId('problems');
  section.hidden = problems.length === 0;
  section.dataset.count = String(problems.length);
  const empty = problems.filter((p) => p.mark === 'empty').length;
  const duplicates = problems.length - empty;
  byId('problems-note').textContent = `${problems.length} problem record${problems.length === 1 ? '' : 's'} (${empty} with an empty instruction or output, `
    + `${duplicates} exact duplicate${duplicates === 1 ? '' : 's'} of an earlier record): scored, but never selected, here or by Select Golden Subset. Click one to show it.`;
  const list = byId('problems-list');
  list.replaceChildren(...problems.slice(0, 50).map((p) => {
    const item = element('li', undefined, 'problem');
    item.dataset.index = String(p.index);
    item.tabIndex = 0;
    item.title = 'Click to show this record in the editor';
    item.append(sentence(`index ${p.index}: ${p.reason}${p.instruction ? ' · ' : ''}`, ...(p.instruction ? [{ text: p.instruction }] : [])));
    const open = (): void => post({ type: 'reveal', index: p.index, range: p.range });
    item.addEventListener('click', open);
    item.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') open();
    });
    return item;
  }));
  if (problems.length > 50) list.append(element('li', `… and ${problems.length - 50} more`, 'muted'));
}

// ---------------------------------------------------------------------------------------------
// Header: which model and anchor set the scores come from

function renderProvenance(model: ModelInfo): void {
  const anchorSet = anchorEffects?.anchorSet;
  const from = model.name ? ['Scores from ', { text: model.name }] : ['No model identified yet'];
  const against = anchorSet ? [' against ', { text: anchorSet.label }, anchorSet.label.includes(String(anchorSet.count)) ? '' : ` (${anchorSet.count} anchors)`] : [', no anchor set chosen yet'];
  const provenance = byId('provenance');
  provenance.replaceChildren(sentence(...from, ...against, '.'));
  provenance.dataset.model = model.name ?? '';
  provenance.dataset.anchors = anchorSet?.label ?? '';
  byId('demo-note').hidden = !model.demo;
}

// ---------------------------------------------------------------------------------------------
// Record table

/** The signal a numeric column's filter and a chart's brush name (SignalBound.signal). */
const SIGNAL_OF: Record<string, string> = { goldenScore: 'golden', meanDelta: 'mean_delta' };

/** A range as people read it: "golden in [0.4, 0.6)", "ifd ≥ 2". */
function rangeLabel(bound: SignalBound): string {
  if (bound.min !== undefined && bound.max !== undefined) return `${bound.signal} in [${bound.min}, ${bound.max})`;
  return bound.min !== undefined ? `${bound.signal} ≥ ${bound.min}` : bound.max !== undefined ? `${bound.signal} < ${bound.max}` : bound.signal;
}

let filterTimer: ReturnType<typeof setTimeout> | undefined;
/** Asks for the table again a moment after the user stops typing in a filter. */
function refilterSoon(): void {
  clearTimeout(filterTimer);
  filterTimer = setTimeout(() => resetTable(true), 200);
}

function rangeFilter(column: string, title: string): Column<TableRow>['filter'] {
  const signal = SIGNAL_OF[column] ?? column;
  return {
    label: `Filter ${title}: a range, min..max`,
    placeholder: 'min..max',
    value: () => rangeText(bounds.get(signal)),
    onInput: (text) => {
      const range = parseRange(signal, text);
      if (typeof range === 'string') return range;
      if (range) bounds.set(signal, range);
      else bounds.delete(signal);
      showBrushes();
      refilterSoon();
      return '';
    },
  };
}

function textFilter(field: 'instruction' | 'output', title: string): Column<TableRow>['filter'] {
  return {
    label: `Filter ${title}: records whose ${field}${field === 'instruction' ? ' or input' : ''} contains this text`,
    placeholder: 'contains…',
    value: () => search[field],
    onInput: (text) => {
      search[field] = text;
      refilterSoon();
      return '';
    },
  };
}

/** The table's columns: the golden score's, then one per signal the server declares, then the text. Numeric columns filter by range, text columns by search. */
function recordColumns(): Column<TableRow>[] {
  return [
    { key: 'index', title: 'index', kind: 'number', sortKey: 'index', describe: 'Sort by index: the record\'s position, from 0, as in the scores file and exports', cell: (row) => indexCell(row.index, row.score?.truncated === true, row.problem) },
    { key: 'goldenScore', title: 'Score', kind: 'number', sortKey: 'goldenScore', filter: rangeFilter('goldenScore', 'Score'), cell: (row) => (row.score ? `${row.score.goldenScore.toFixed(2)}${row.stale ? ' (stale)' : ''}` : '—') },
    { key: 'wins', title: 'Wins', kind: 'number', sortKey: 'wins', cell: (row) => (row.score ? `${row.score.wins}/${row.score.anchors}` : '—') },
    { key: 'meanDelta', title: 'Mean Δ', kind: 'number', sortKey: 'meanDelta', describe: 'Sort by mean delta (nats)', filter: rangeFilter('meanDelta', 'Mean Δ'), cell: (row) => (row.score ? row.score.meanDelta.toFixed(3) : '—') },
    ...(distribution?.signals ?? []).map((signal): Column<TableRow> => ({
      key: signal.name, title: signal.label, kind: 'number', sortKey: signal.name, describe: `Sort by ${signal.label}: ${signal.description}`,
      filter: rangeFilter(signal.name, signal.label), cell: (row) => row.signals?.[signal.name] ?? '—',
    })),
    { key: 'instruction', title: 'Instruction', kind: 'text', filter: textFilter('instruction', 'Instruction'), cell: (row) => (row.input ? sentence({ text: row.instruction }, ' — ', { text: row.input }) : row.instruction) },
    { key: 'output', title: 'Output', kind: 'text', filter: textFilter('output', 'Output'), cell: (row) => row.output },
  ];
}

/** The server-side filter of the table: the selection's ranges and the text searches. */
function currentFilter(): RecordFilter | undefined {
  return recordFilterOf(bounds, search);
}

function currentQuery(offset: number, limit: number): TableQuery {
  const filter = currentFilter();
  return { offset, limit, ...sort, ...(onlyAboveThreshold ? { minScore: threshold } : {}), ...(filter ? { filter } : {}) };
}

function openRecord(row: { index: number; range?: TableRow['range'] }): void {
  markedIndex = row.index;
  markRecordRows(markedIndex);
  post({ type: 'reveal', index: row.index, ...(row.range ? { range: row.range } : {}) });
  post({ type: 'showRecord', index: row.index });
  post({ type: 'neighbours', index: row.index });
}

const tableOptions = () => ({
  widths: recordWidths,
  blockSize: BLOCK_SIZE,
  sorted: { key: sort.sortBy, descending: sort.descending },
  onSort: (key: string) => {
    const sortBy = key as TableSortKey;
    sort = { descending: nextSort({ key: sort.sortBy, descending: sort.descending }, sortBy, 'index').descending, sortBy };
    resetTable(true);
  },
  fetch: (offset: number, limit: number) => post({ type: 'page', seq: querySeq, query: currentQuery(offset, limit) }),
  decorate: (tr: HTMLTableRowElement, row: TableRow) => decorateRecordRow(tr, row, row.index === markedIndex,
    'Click to show this record in the editor, and the whole record beside the table', () => openRecord(row)),
});

const recordTable = new VirtualTable<TableRow>(byId('records-scroll'), byId<HTMLTableElement>('records-table'), tableOptions());

/** A new order, filter or set of scores: the table forgets its rows and asks again for those in view. */
function resetTable(scrollToTop: boolean): void {
  querySeq++;
  saveState();
  renderSelection();
  recordTable.reset(recordColumns(), tableOptions(), scrollToTop);
}

function renderPage(page: TablePageResult): void {
  recordTable.receive(page.offset, page.rows, page.total);
  const info = byId('page-info');
  info.textContent = page.total === 0 ? 'No records match.' : `${page.total} record${page.total === 1 ? '' : 's'}${currentFilter() || onlyAboveThreshold ? ' match' : ''}; scroll for more`;
  info.dataset.total = String(page.total);
  renderSelection();
}

// ---------------------------------------------------------------------------------------------
// Selection: brushed ranges and column filters, one set of ranges the table, Write Subset and Export share

/** A brush on a chart: its ranges replace the same signals' ranges (null: the brush was cleared). */
function brush(ranges: SignalBound[] | null): void {
  for (const range of ranges ?? []) bounds.set(range.signal, range);
  showBrushes();
  syncFilterFields();
  resetTable(true);
}

function clearSelection(): void {
  bounds.clear();
  search.instruction = '';
  search.output = '';
  showBrushes();
  syncFilterFields();
  resetTable(true);
}

function showBrushes(): void {
  const ranges = [...bounds.values()];
  for (const chart of charts) chart.showBrush(ranges);
  renderThreshold();
}

/** The column filter fields show the selection (a brush writes its range into its column's field; Clear Selection empties them all). */
function syncFilterFields(): void {
  for (const th of document.querySelectorAll<HTMLTableCellElement>('#records-table th[data-column]')) {
    const input = th.querySelector<HTMLInputElement>('input.column-filter');
    const column = th.dataset.column!;
    if (!input || document.activeElement === input) continue;
    input.value = column === 'instruction' || column === 'output' ? search[column] : rangeText(bounds.get(SIGNAL_OF[column] ?? column));
    input.removeAttribute('aria-invalid');
  }
}

function renderSelection(): void {
  renderThreshold(); // Write Subset and Export say whether they take the selection
  const ranges = [...bounds.values()].map(rangeLabel);
    const summary = byId('selection-summary');
  const any = ranges.length > 0 || search.instruction.trim() !== '' || search.output.trim() !== '';
  (byId('clear-selection') as HTMLButtonElement).disabled = !any;
  summary.dataset.ranges = JSON.stringify([...bounds.values()]);
  if (!any) {
    summary.textContent = 'All records. Drag over a chart, or type in a column\'s filter, to select records.';
    return;
  }
  const count = recordTable.count;
  const parts: (string | { text: string })[] = [`Selection: ${ranges.join(', ')}`];
  if (search.instruction.trim()) parts.push(ranges.length > 0 ? ', instruction contains “' : 'instruction contains “', { text: search.instruction.trim() }, '”');
  if (search.output.trim()) parts.push(ranges.length > 0 || search.instruction.trim() ? ', output contains “' : 'output contains “', { text: search.output.trim() }, '”');
  parts.push(` — ${count} record${count === 1 ? '' : 's'} in the table.`);
  summary.replaceChildren(sentence(...parts));
}

// ---------------------------------------------------------------------------------------------
// Record view: one record's delta on every anchor

// ---------------------------------------------------------------------------------------------
// Anchor effects

function winRateCell(winRate: number): HTMLElement {
  const cell = element('span', undefined, 'win-rate');
  const meter = element('span', undefined, 'meter');
  const fill = element('span', undefined, 'meter-fill');
  fill.style.width = `${(100 * winRate).toFixed(1)}%`;
  meter.append(fill);
  cell.append(meter, element('span', `${(100 * winRate).toFixed(0)}%`, 'meter-label'));
  return cell;
}

function renderAnchors(): void {
  const effects = anchorEffects;
  const table = byId<HTMLTableElement>('anchors-table');
  const note = byId('anchors-note');
  const still = byId('anchors-unmoved');
  if (!effects || !effects.anchorSet) {
    table.replaceChildren();
    note.textContent = 'No anchor set yet: Nuggets: Score Dataset chooses one.';
    still.hidden = true;
    return;
  }
  note.textContent = `${effects.anchorSet.count} anchors (${effects.anchorSet.label}), statistics over ${effects.candidates} scored record${effects.candidates === 1 ? '' : 's'}. Win rate: share of records that made the anchor's response more likely.`;
  const unmoved = effects.candidates > 0 ? effects.anchors.filter((a) => a.moved === 0) : [];
  still.hidden = unmoved.length === 0;
  still.textContent = unmoved.length === 0 ? '' : `${unmoved.length} anchor${unmoved.length === 1 ? '' : 's'} no record moves (${unmoved.map((a) => a.index + 1).join(', ')}): ` +
    'no scored record changed the likelihood of its response, so it counts as a loss for every record and caps every golden score below 1. ' +
    'It may have an empty response, or lose its response when cut to the anchor token limit.';
  const anchors = [...effects.anchors].sort((a, b) => (anchorSort.descending ? -1 : 1) * (a[anchorSort.key] - b[anchorSort.key]) || a.index - b.index);
  renderTable(table, [
    { key: 'index', title: '#', kind: 'number', sortKey: 'index', cell: (a) => String(a.index + 1) },
    { key: 'anchor', title: 'Anchor', kind: 'text', cell: anchorText },
    { key: 'winRate', title: 'Win rate', kind: 'number', sortKey: 'winRate', cell: (a) => winRateCell(a.winRate) },
    { key: 'meanDelta', title: 'Mean Δ (nats)', kind: 'number', sortKey: 'meanDelta', cell: (a) => a.meanDelta.toFixed(3) },
    { key: 'moved', title: 'Moved by', kind: 'number', describe: 'Scored records that changed this anchor\'s likelihood at all', cell: (a) => (a.moved === 0 && effects.candidates > 0 ? 'no record ⚠' : `${a.moved}`) },
  ], anchors, {
    widths: anchorWidths,
    sorted: anchorSort,
    onSort: (key) => {
      const k = key as typeof anchorSort.key;
      anchorSort = nextSort(anchorSort, k, 'index');
      renderAnchors();
    },
    decorate: (tr, anchor) => {
      tr.className = 'anchor';
      tr.dataset.index = String(anchor.index);
      tr.classList.toggle('unmoved', anchor.moved === 0 && effects.candidates > 0);
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Signals: a histogram per signal, and golden score against IFD

function renderSignalCharts(): void {
  const box = byId('signal-charts');
  box.replaceChildren(...(distribution?.signals ?? []).map((signal) => {
    const median = signal.summary.median;
    const description = `${signal.label}${signal.unit ? ` (${signal.unit})` : ''}: median ${median === null ? '—' : median.toPrecision(3)}, `
      + `${signal.from.toPrecision(3)}–${signal.to.toPrecision(3)}${signal.scale === 'log' ? ', log scale' : ''}${signal.missing ? `, ${signal.missing} missing` : ''}`;
    const present = signal.counts.reduce((a, b) => a + b, 0);
    if (present === 0) {
      const empty = element('figure', undefined, 'chart');
      empty.dataset.signal = signal.name;
      empty.append(element('figcaption', `${description}: no values yet`));
      return empty;
    }
    const chart = histogram({
      edges: binEdges(signal.from, signal.to, signal.counts.length, signal.scale === 'log'), counts: signal.counts, log: signal.scale === 'log',
      signal: signal.name, xLabel: `${signal.label}${signal.scale === 'log' ? ' (log)' : ''}`,
    }, 140, brush, description);
    charts.push(chart);
    const note = element('p', description, 'muted chart-note');
    note.title = signal.description;
    chart.element.append(note);
    return chart.element;
  }));
}

function renderScatter(): void {
  const box = byId('scatter-chart');
  const points = scatter?.points ?? [];
  if (points.length === 0) {
    box.replaceChildren();
    byId('scatter-note').textContent = 'No record has both a golden score and an IFD yet.';
    return;
  }
  const log = points.every((p) => p.y > 0);
  const chart = scatterPlot({ points, xLabel: 'golden score', yLabel: `IFD${log ? ' (log)' : ''}`, log }, 240, brush, (index) => openRecord({ index }));
  box.replaceChildren(chart.element);
  charts.push(chart);
  let low = Infinity;
  let high = -Infinity;
  for (const p of points) [low, high] = [Math.min(low, p.y), Math.max(high, p.y)];
  byId('scatter-note').textContent = `${points.length} records; IFD from ${low.toPrecision(3)} to ${high.toPrecision(3)}${log ? ' on a log scale' : ''}. Hover a point to name its record, click it to show the record, drag a region to select it.`;
}

/** The clicked record's nearest neighbours by embedding: near-duplicates a curator can act on (inside the record view). */
function renderNeighbours(result: NeighboursResult): void {
  const box = byId('neighbours');
  box.replaceChildren(element('h3', `Nearest neighbours of record index ${result.index}`));
  if (result.neighbours.length === 0) {
    box.append(element('p', result.note ?? 'None.', 'muted'));
    return;
  }
  const list = element('ol');
  for (const n of result.neighbours) {
    const item = element('li', undefined, 'neighbour');
    item.append(sentence(`${n.similarity.toFixed(3)} · index ${n.index}: `, { text: n.instruction }));
    item.dataset.index = String(n.index);
    item.tabIndex = 0;
    item.title = 'Click to show this record in the editor';
    item.addEventListener('click', () => post({ type: 'reveal', index: n.index }));
    list.append(item);
  }
  box.append(list);
}

// ---------------------------------------------------------------------------------------------
// Compare Models: its result section (#compare) is drawn by a render function of its own, kept apart from the rest.

// ---------------------------------------------------------------------------------------------
// Wiring

window.addEventListener('message', (event: MessageEvent<HostMessage>) => {
  const message = event.data;
  switch (message?.type) {
    case 'state':
      fileProblem = message.fileProblem ?? null;
      renderFileProblem();
      distribution = message.distribution;
      anchorEffects = message.anchorEffects;
      scatter = message.scatter;
      byId('error').textContent = '';
      for (const chart of charts) chart.destroy();
      charts = [];
      renderSummary(message.dataset);
      renderProvenance(message.model);
      renderHistogram();
      renderProblems();
      renderSignalCharts();
      renderScatter();
      showBrushes();
      renderAnchors();
      // New scores: the rows in view are asked for again, where the user had scrolled to.
      resetTable(false);
      break;
    case 'comparison':
      renderComparison(byId('comparison'), message.comparison);
      break;
    case 'page':
      if (message.seq === querySeq) renderPage(message.page);
      break;
    case 'neighbours':
      if (message.result.index === recordView.record?.index || message.result.index === markedIndex) renderNeighbours(message.result);
      break;
    case 'record': {
      // Refreshes while scoring send the open record again: only a newly opened one scrolls into view.
      const opened = recordView.record?.index !== message.record.index;
      if (opened) byId('neighbours').replaceChildren();
      markedIndex = message.record.index;
      recordView.show(message.record);
      if (opened) byId('record-view').scrollIntoView({ block: 'nearest' });
      break;
    }
    case 'error':
      byId('error').textContent = message.message;
      break;
  }
});

const slider = byId('threshold') as HTMLInputElement;
let thresholdTimer: ReturnType<typeof setTimeout> | undefined;
slider.addEventListener('input', () => {
  threshold = Number(slider.value);
  renderThreshold();
  saveState();
  if (onlyAboveThreshold) {
    clearTimeout(thresholdTimer);
    thresholdTimer = setTimeout(() => resetTable(true), 150);
  }
});
const onlyAbove = byId('only-above');
if (onlyAboveThreshold) onlyAbove.setAttribute('checked', '');
onlyAbove.addEventListener('change', () => {
  onlyAboveThreshold = (onlyAbove as HTMLInputElement).checked;
  resetTable(true);
});
byId('clear-selection').addEventListener('click', clearSelection);

byId('record-close').addEventListener('click', () => {
  recordView.show(undefined);
  post({ type: 'closeRecord' });
});
byId('record-reveal').addEventListener('click', () => {
  const record = recordView.record;
  if (record) post({ type: 'reveal', index: record.index, range: record.range });
});
/** The selection's ranges, for Write Subset and Export (absent when there are none). */
const selectionRanges = (): { bounds?: SignalBound[] } => (bounds.size > 0 ? { bounds: [...bounds.values()] } : {});
byId('choose-model').addEventListener('click', () => post({ type: 'chooseModel' }));
byId('write-subset').addEventListener('click', () => post({ type: 'writeSubset', threshold, withScores: (byId('with-scores') as HTMLInputElement).checked, ...selectionRanges() }));
byId('export-scores').addEventListener('click', () => post({
  type: 'exportScores',
  format: (byId('export-format') as HTMLSelectElement).value === 'jsonl' ? 'jsonl' : 'csv',
  withDeltas: (byId('export-deltas') as HTMLInputElement).checked,
  ...selectionRanges(),
}));

renderThreshold();
renderSelection();
post({ type: 'ready' });
