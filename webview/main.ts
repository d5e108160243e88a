/**
 * The dashboard page (bundled as dist/webview.js, a browser script): histogram of golden scores, a
 * threshold with the live count and share at or above it, a chart per signal and golden score against
 * IFD (click a point to reveal its record), the record table (a column per signal, sorted and paged by
 * the server; click a row to reveal it and see its effect on every anchor), the anchor effects, and
 * the ways out (a subset at the threshold, an export of the scores). The header names the model and
 * the anchor set. Talks only to the extension, through postMessage (messages.ts). Everything from the
 * dataset is set with textContent, never as HTML.
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
import {
  HISTOGRAM_BINS,
  PAGE_SIZE,
  type AnchorEffectsResult,
  type DistributionResult,
  type FileProblem,
  type HostMessage,
  type NeighboursResult,
  type ModelInfo,
  type RecordProblemInfo,
  type RecordEffectsResult,
  type ScatterResult,
  type SignalChart,
  type TablePageResult,
  type TableQuery,
  type TableRow,
  type TableSortKey,
  type WebviewMessage,
} from './messages';
import { renderComparison } from './compare';
import { renderTable, type Column } from './table';

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
  query: TableQuery;
  onlyAboveThreshold: boolean;
}

const vscode = acquireVsCodeApi();
const saved = vscode.getState();
let threshold = saved?.threshold ?? 0.5;
let onlyAboveThreshold = saved?.onlyAboveThreshold ?? false;
let query: TableQuery = saved?.query ?? { offset: 0, limit: PAGE_SIZE, sortBy: 'goldenScore', descending: true };
let distribution: DistributionResult | undefined;
/** Why the dataset's file does not parse now; null while it does. */
let fileProblem: FileProblem | null = null;
let anchorEffects: AnchorEffectsResult | undefined;
let scatter: ScatterResult | undefined;
let anchorSort: { key: 'index' | 'winRate' | 'meanDelta'; descending: boolean } = { key: 'winRate', descending: true };
/** The record view's record, while it is open. */
let record: RecordEffectsResult | undefined;
let recordSort: { key: 'index' | 'delta'; descending: boolean } = { key: 'delta', descending: true };
/** Widths the user gave columns by resizing them, per table. */
const recordWidths = new Map<string, number>();
const anchorWidths = new Map<string, number>();
const recordViewWidths = new Map<string, number>();
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

/**
 * Text from the dataset or a model's name inside a sentence, each piece in a <bdi>: right-to-left text (or a
 * stray direction mark) in one piece cannot reorder the words around it.
 */
function sentence(...parts: (string | { text: string })[]): HTMLElement {
  const span = element('span');
  span.append(...parts.map((p) => (typeof p === 'string' ? p : element('bdi', p.text))));
  return span;
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
  (byId('write-subset') as HTMLButtonElement).disabled = writeWhy !== '';
  byId('write-subset-why').textContent = writeWhy;
  (byId('export-scores') as HTMLButtonElement).disabled = exportWhy !== '';
  byId('export-why').textContent = exportWhy;
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

/**
 * The record's index (0-based, as in the scores file, the exports and the command line); marks a record cut from
 * the left to fit the model's context (its golden score saw only its end) and a problem record (never selected).
 */
function indexCell(index: number, truncated: boolean, problem?: RecordProblemInfo): string | HTMLElement {
  if (!truncated && !problem) return String(index);
  const cell = element('span', String(index));
  if (problem) {
    const mark = element('span', ' ⚠', 'problem');
    mark.title = `Never selected: ${problem.reason}.`;
    mark.setAttribute('aria-label', `problem record: ${problem.reason}`);
    cell.append(mark);
  }
  if (truncated) {
    const mark = element('span', ' ✂', 'cut');
    mark.title = 'Cut from the left to fit the model\'s context: the score saw only the record\'s end.';
    mark.setAttribute('aria-label', 'truncated');
    cell.append(mark);
  }
  return cell;
}

/** The table's columns: the golden score's, then one per signal the server declares, then the text. */
function recordColumns(): Column<TableRow>[] {
  return [
    { key: 'index', title: 'index', kind: 'number', sortKey: 'index', describe: 'Sort by index: the record\'s position, from 0, as in the scores file and exports', cell: (row) => indexCell(row.index, row.score?.truncated === true, row.problem) },
    { key: 'goldenScore', title: 'Score', kind: 'number', sortKey: 'goldenScore', cell: (row) => (row.score ? `${row.score.goldenScore.toFixed(2)}${row.stale ? ' (stale)' : ''}` : '—') },
    { key: 'wins', title: 'Wins', kind: 'number', sortKey: 'wins', cell: (row) => (row.score ? `${row.score.wins}/${row.score.anchors}` : '—') },
    { key: 'meanDelta', title: 'Mean Δ', kind: 'number', sortKey: 'meanDelta', describe: 'Sort by mean delta (nats)', cell: (row) => (row.score ? row.score.meanDelta.toFixed(3) : '—') },
    ...(distribution?.signals ?? []).map((signal): Column<TableRow> => ({
      key: signal.name, title: signal.label, kind: 'number', sortKey: signal.name, describe: `Sort by ${signal.label}: ${signal.description}`, cell: (row) => row.signals?.[signal.name] ?? '—',
    })),
    { key: 'instruction', title: 'Instruction', kind: 'text', cell: (row) => (row.input ? sentence({ text: row.instruction }, ' — ', { text: row.input }) : row.instruction) },
    { key: 'output', title: 'Output', kind: 'text', cell: (row) => row.output },
  ];
}

function requestPage(): void {
  query = { ...query, limit: PAGE_SIZE };
  if (onlyAboveThreshold) query.minScore = threshold;
  else delete query.minScore;
  saveState();
  post({ type: 'page', seq: ++pageSeq, query });
}

function renderPage(page: TablePageResult): void {
  renderTable(byId<HTMLTableElement>('records-table'), recordColumns(), page.rows, {
    widths: recordWidths,
    sorted: { key: query.sortBy, descending: query.descending },
    onSort: (key) => {
      const sortBy = key as TableSortKey;
      query = { ...query, offset: 0, descending: nextSort({ key: query.sortBy, descending: query.descending }, sortBy, 'index').descending, sortBy };
      requestPage();
    },
    decorate: (tr, record) => {
      tr.className = 'record';
      tr.dataset.index = String(record.index);
      tr.classList.toggle('stale', record.stale);
      tr.classList.toggle('truncated', record.score?.truncated === true);
      tr.classList.toggle('problem', record.problem !== undefined);
      tr.tabIndex = 0;
      tr.title = 'Click to show this record in the editor and its effect on every anchor here';
      const open = (): void => {
        post({ type: 'reveal', index: record.index, range: record.range });
        post({ type: 'showRecord', index: record.index });
        post({ type: 'neighbours', index: record.index });
      };
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') open();
      });
    },
  });
  const first = page.total === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.rows.length;
  const info = byId('page-info');
  info.textContent = page.total === 0 ? 'No records match.' : `Rows ${first}–${last} of ${page.total}`;
  info.dataset.total = String(page.total);
  info.dataset.offset = String(page.offset);
  (byId('prev-page') as HTMLButtonElement).disabled = page.offset <= 0;
  (byId('next-page') as HTMLButtonElement).disabled = last >= page.total;
}

// ---------------------------------------------------------------------------------------------
// Record view: one record's delta on every anchor

const anchorText = (a: { instruction: string; input: string }): string | HTMLElement => (a.input ? sentence({ text: a.instruction }, ' — ', { text: a.input }) : a.instruction);

function deltaText(delta: number | null, self: boolean): string {
  if (self) return 'itself, left out';
  return delta === null ? 'not scored' : `${delta > 0 ? '+' : ''}${delta.toFixed(3)}`;
}

function renderRecord(): void {
  const view = byId('record-view');
  if (!record) {
    view.hidden = true;
    return;
  }
  view.hidden = false;
  view.dataset.index = String(record.index);
  byId('record-title').replaceChildren(sentence(`Record index ${record.index}: `, { text: record.instruction }));
  const s = record.score;
  const parts = s
    ? [`Golden score ${s.goldenScore.toFixed(2)}`, `${s.wins}/${s.anchors} anchors helped`, `mean Δ ${s.meanDelta.toFixed(3)} nats`]
    : ['Not scored yet: run Nuggets: Score Dataset.'];
  if (record.stale) parts.push('stale (scored under another model, anchor set or text)');
  if (s?.selfAnchor !== undefined) parts.push(`it is anchor ${s.selfAnchor + 1} itself: that pair is left out`);
  if (record.problem) parts.push(`⚠ never selected: ${record.problem.reason}`);
  byId('record-summary').replaceChildren(sentence(parts.join(' · '), ...(record.anchorSet ? [' · anchors: ', { text: record.anchorSet.label }] : [])));
  const cut = byId('record-truncated');
  cut.hidden = s?.truncated !== true;
  cut.textContent = 'This record was cut from the left to fit the model\'s context: its score saw only its end.';
  const effects = [...record.effects].sort((a, b) => {
    if (recordSort.key === 'index') return (recordSort.descending ? -1 : 1) * (a.index - b.index);
    if (a.delta === null || b.delta === null) return a.delta !== null ? -1 : b.delta !== null ? 1 : a.index - b.index;
    return (recordSort.descending ? -1 : 1) * (a.delta - b.delta) || a.index - b.index;
  });
  renderTable(byId<HTMLTableElement>('record-table'), [
    { key: 'index', title: '#', kind: 'number', sortKey: 'index', cell: (e) => String(e.index + 1) },
    { key: 'delta', title: 'Δ (nats)', kind: 'number', sortKey: 'delta', describe: 'Sort by delta: one-shot minus zero-shot log-probability of the anchor\'s response', cell: (e) => deltaText(e.delta, e.index === s?.selfAnchor) },
    { key: 'anchor', title: 'Anchor', kind: 'text', cell: anchorText },
  ], effects, {
    widths: recordViewWidths,
    sorted: recordSort,
    onSort: (key) => {
      const k = key as typeof recordSort.key;
      recordSort = nextSort(recordSort, k, 'index');
      renderRecord();
    },
    decorate: (tr, effect) => {
      tr.className = 'effect';
      tr.dataset.index = String(effect.index);
      tr.classList.toggle('helps', effect.delta !== null && effect.delta > 0);
      tr.classList.toggle('hurts', effect.delta !== null && effect.delta < 0);
    },
  });
}

/**
 * The order after a click on column `key`: the same column flips; a new one starts with its most useful
 * order, best first, except the position column (`ascendingKey`), which starts from the top.
 */
function nextSort<K extends string>(current: { key: K; descending: boolean }, key: K, ascendingKey: K): { key: K; descending: boolean } {
  return { key, descending: key === current.key ? !current.descending : key !== ascendingKey };
}

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
  if (points.length === 0) {
    byId('scatter-note').textContent = 'No record has both a golden score and an IFD yet.';
    return;
  }
  const low = Math.min(...points.map((p) => p.y));
  const high = Math.max(...points.map((p) => p.y));
  byId('scatter-note').textContent = `${points.length} records; IFD from ${low.toPrecision(3)} (bottom) to ${high.toPrecision(3)} (top). Click a point to show its record.`;
  for (const p of points) {
    const dot = document.createElementNS(SVG, 'circle');
    dot.setAttribute('cx', String(4 + p.x * 392));
    dot.setAttribute('cy', String(196 - (high > low ? (p.y - low) / (high - low) : 0.5) * 192));
    dot.setAttribute('r', '3');
    dot.dataset.index = String(p.index);
    const title = document.createElementNS(SVG, 'title');
    title.textContent = `index ${p.index}: golden ${p.x.toFixed(2)}, IFD ${p.y.toPrecision(3)}`;
    dot.append(title);
    dot.addEventListener('click', () => post({ type: 'reveal', index: p.index }));
    svg.append(dot);
  }
}

/** The clicked record's nearest neighbours by embedding: near-duplicates a curator can act on. */
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
    item.title = 'Click to show this record in the editor';
    item.addEventListener('click', () => post({ type: 'reveal', index: n.index }));
    list.append(item);
  }
  box.append(list);
}

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
      renderSummary(message.dataset);
      renderProvenance(message.model);
      renderHistogram();
      renderProblems();
      renderSignalCharts();
      renderScatter();
      renderAnchors();
      requestPage();
      break;
    case 'comparison':
      renderComparison(byId('comparison'), message.comparison);
      break;
    case 'page':
      if (message.seq === pageSeq) renderPage(message.page);
      break;
    case 'neighbours':
      renderNeighbours(message.result);
      break;
    case 'record': {
      // Refreshes while scoring send the open record again: only a newly opened one scrolls into view.
      const opened = record?.index !== message.record.index;
      record = message.record;
      renderRecord();
      if (opened) byId('record-view').scrollIntoView({ block: 'nearest' });
      break;
    }
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

byId('record-close').addEventListener('click', () => {
  record = undefined;
  renderRecord();
  post({ type: 'closeRecord' });
});
byId('record-reveal').addEventListener('click', () => {
  if (record) post({ type: 'reveal', index: record.index, range: record.range });
});
byId('choose-model').addEventListener('click', () => post({ type: 'chooseModel' }));
byId('write-subset').addEventListener('click', () => post({ type: 'writeSubset', threshold, withScores: (byId('with-scores') as HTMLInputElement).checked }));
byId('export-scores').addEventListener('click', () => post({
  type: 'exportScores',
  format: (byId('export-format') as HTMLSelectElement).value === 'jsonl' ? 'jsonl' : 'csv',
  withDeltas: (byId('export-deltas') as HTMLInputElement).checked,
}));

renderThreshold();
post({ type: 'ready' });
