/**
 * The Parquet table page (bundled as dist/parquet-table.js, a browser script), the body of the read-only
 * editor of a `.parquet` file (extension/parquet_editor.ts). Its header names the file and says what its
 * footer says (rows, row groups, size) and how far the row index is; its buttons run Score Dataset, Select
 * Golden Subset and Show Dashboard on the file. The table (virtual-table.ts) asks the server for the rows in
 * view, a block at a time, so that a file of any size opens at once: in file order at first, sorted by any
 * column and filtered by column once the row index is read (until then those controls wait, disabled, and say
 * why). A click on a row opens the record view beside it (record-view.ts): the whole record or conversation,
 * the scored turn marked, and its effect on every anchor. Talks only to the extension, through postMessage
 * (table-messages.ts). Everything from the file is set with textContent, never as HTML.
 */
import { provideVSCodeDesignSystem, vsCodeButton } from '@vscode/webview-ui-toolkit';
import { BLOCK_SIZE, type RecordFilter, type SignalBound, type TablePageResult, type TableQuery, type TableRow, type TableSortKey } from './messages';
import { byId, decorateRecordRow, indexCell, markRecordRows, nextSort, RecordView, recordFilterOf, sentence } from './record-view';
import type { TableCommand, TableHostMessage, TableIndexParams, TableInfo, TableWebviewMessage } from './table-messages';
import { parseRange, rangeText, type Column } from './table';
import { VirtualTable } from './virtual-table';

provideVSCodeDesignSystem().register(vsCodeButton());

interface VsCodeApi {
  postMessage(message: TableWebviewMessage): void;
  getState(): SavedState | undefined;
  setState(state: SavedState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

/** What survives the editor being hidden and shown again. */
interface SavedState {
  sort: { sortBy: TableSortKey; descending: boolean };
  bounds: SignalBound[];
  search: { instruction: string; output: string };
}

/** How the server names the signals of a row (TableRow.signals), as the dashboard labels them. */
const SIGNAL_LABELS: Record<string, string> = { ppl_cond: 'PPL (cond.)', ppl_direct: 'PPL (direct)', ifd: 'IFD' };
/** The signal a numeric column's filter names (SignalBound.signal). */
const SIGNAL_OF: Record<string, string> = { goldenScore: 'golden', meanDelta: 'mean_delta' };
const FILE_ORDER = { sortBy: 'index' as TableSortKey, descending: false };

const vscode = acquireVsCodeApi();
const saved = vscode.getState();
let sort = saved?.sort ?? FILE_ORDER;
const bounds = new Map<string, SignalBound>((saved?.bounds ?? []).map((b) => [b.signal, b]));
const search = { instruction: saved?.search?.instruction ?? '', output: saved?.search?.output ?? '' };
let info: TableInfo | undefined;
/** The row index's progress: sorting and filters wait until it is done. */
let index: TableIndexParams | undefined;
/** Signals the rows carry, in the order first seen: a column each. */
const signalNames: string[] = [];
let querySeq = 0;
let markedIndex: number | undefined;
const widths = new Map<string, number>();
const recordView = new RecordView();

const post = (message: TableWebviewMessage): void => vscode.postMessage(message);
const indexed = (): boolean => index?.done === true && !index.problem;

function saveState(): void {
  vscode.setState({ sort, bounds: [...bounds.values()], search });
}

// ---------------------------------------------------------------------------------------------
// Header: the file, its footer, the row index

function megabytes(bytes: number): string {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}

function renderInfo(name: string): void {
  byId('dataset').textContent = name;
  if (!info) return;
  const facts = byId('table-facts');
  facts.textContent = `${info.rows.toLocaleString('en-US')} row${info.rows === 1 ? '' : 's'} · ${info.rowGroups} row group${info.rowGroups === 1 ? '' : 's'} · ${megabytes(info.bytes)} · `
    + `${info.columns.length} column${info.columns.length === 1 ? '' : 's'}: `;
  facts.append(sentence({ text: info.columns.join(', ') }));
  facts.dataset.rows = String(info.rows);
  const note = byId('whole-note');
  note.hidden = info.wholeAllowed;
  note.textContent = info.wholeAllowed ? '' : `This file is larger than the ${megabytes(info.wholeMaxBytes)} the editor reads whole: Score Dataset, Select Golden Subset and the dashboard `
    + 'need the command line here (nuggets score, nuggets select). The table shows the scores it stores.';
  for (const id of ['score-dataset', 'select-subset', 'show-dashboard']) (byId(id) as HTMLButtonElement).disabled = !info.wholeAllowed;
}

function renderIndex(): void {
  const line = byId('index-progress');
  if (!index) {
    line.textContent = 'Sorting and filters wait for the row index.';
  } else if (index.problem) {
    line.replaceChildren(sentence('The row index stopped: ', { text: index.problem }, '. Rows still show in file order; sorting and filters are off.'));
  } else if (!index.done) {
    const percent = index.rows > 0 ? Math.floor((100 * index.indexed) / index.rows) : 0;
    line.textContent = `Sorting and filters wait for the row index: ${percent}% read`;
  } else {
    line.textContent = '';
  }
  line.dataset.done = String(indexed());
  enableControls();
}

/** Sort buttons and filter fields work once the row index is read; until then they say why not. */
function enableControls(): void {
  const why = indexed() ? '' : byId('index-progress').textContent ?? '';
  for (const control of document.querySelectorAll<HTMLButtonElement | HTMLInputElement>('#records-table button.sort, #records-table input.column-filter')) {
    control.disabled = !indexed();
    // The control's own title ("Sort by Score") comes back once it works.
    control.dataset.title ??= control.title;
    control.title = why || control.dataset.title;
  }
}

// ---------------------------------------------------------------------------------------------
// The table

let filterTimer: ReturnType<typeof setTimeout> | undefined;
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
      refilterSoon();
      return '';
    },
  };
}

function textFilter(field: 'instruction' | 'output', title: string): Column<TableRow>['filter'] {
  return {
    label: `Filter ${title}: rows whose ${field === 'instruction' ? 'instruction (or last user turn)' : 'output (or scored turn)'} contains this text`,
    placeholder: 'contains…',
    value: () => search[field],
    onInput: (text) => {
      search[field] = text;
      refilterSoon();
      return '';
    },
  };
}

/** Index, role/turns, the instruction (or last user turn), the output (the scored turn), the golden score and every signal. */
function columns(): Column<TableRow>[] {
  return [
    { key: 'index', title: 'index', kind: 'number', sortKey: 'index', describe: 'Sort by index: the row\'s position in the file, from 0', cell: (row) => indexCell(row.index, row.score?.truncated === true, row.problem) },
    {
      key: 'turns', title: 'Turns', kind: 'number', describe: 'A conversation\'s turns; an Alpaca record is one instruction and its output',
      cell: (row) => (row.turns !== undefined ? `${row.turns} turns` : 'Alpaca'),
    },
    {
      key: 'instruction', title: 'Instruction / last user turn', kind: 'text', filter: textFilter('instruction', 'Instruction'),
      cell: (row) => (row.input ? sentence({ text: row.instruction }, ' — ', { text: row.input }) : row.instruction),
    },
    { key: 'output', title: 'Output / scored turn', kind: 'text', filter: textFilter('output', 'Output'), cell: (row) => row.output },
    {
      key: 'goldenScore', title: 'Score', kind: 'number', sortKey: 'goldenScore', describe: 'Sort by golden score: the share of anchors the record helps', filter: rangeFilter('goldenScore', 'Score'),
      cell: (row) => (row.score ? `${row.score.goldenScore.toFixed(2)}${row.stale ? ' (stale)' : ''}` : '—'),
    },
    { key: 'wins', title: 'Wins', kind: 'number', sortKey: 'wins', cell: (row) => (row.score ? `${row.score.wins}/${row.score.anchors}` : '—') },
    { key: 'meanDelta', title: 'Mean Δ', kind: 'number', sortKey: 'meanDelta', describe: 'Sort by mean delta (nats)', filter: rangeFilter('meanDelta', 'Mean Δ'), cell: (row) => (row.score ? row.score.meanDelta.toFixed(3) : '—') },
    ...signalNames.map((name): Column<TableRow> => {
      const label = SIGNAL_LABELS[name] ?? name;
      return { key: name, title: label, kind: 'number', sortKey: name, describe: `Sort by ${label}`, filter: rangeFilter(name, label), cell: (row) => row.signals?.[name] ?? '—' };
    }),
  ];
}

function currentFilter(): RecordFilter | undefined {
  return indexed() ? recordFilterOf(bounds, search) : undefined;
}

/** The rows in file order until the row index is read; then in the chosen order, within the filters. */
function currentQuery(offset: number, limit: number): TableQuery {
  const filter = currentFilter();
  return { offset, limit, ...(indexed() ? sort : FILE_ORDER), ...(filter ? { filter } : {}) };
}

function openRecord(row: TableRow): void {
  markedIndex = row.index;
  markRecordRows(markedIndex);
  post({ type: 'showRecord', index: row.index });
}

const tableOptions = () => {
  const shown = indexed() ? sort : FILE_ORDER;
  return {
    widths,
    blockSize: BLOCK_SIZE,
    sorted: { key: shown.sortBy, descending: shown.descending },
    onSort: (key: string) => {
      if (!indexed()) return;
      const sortBy = key as TableSortKey;
      sort = { descending: nextSort({ key: sort.sortBy, descending: sort.descending }, sortBy, 'index').descending, sortBy };
      resetTable(true);
    },
    fetch: (offset: number, limit: number) => post({ type: 'page', seq: querySeq, query: currentQuery(offset, limit) }),
    decorate: (tr: HTMLTableRowElement, row: TableRow) => decorateRecordRow(tr, row, row.index === markedIndex, 'Click to show the whole record beside the table', () => openRecord(row)),
  };
};

const table = new VirtualTable<TableRow>(byId('records-scroll'), byId<HTMLTableElement>('records-table'), tableOptions());

/** A new order or filter (`scrollToTop`), or new scores: the table forgets its rows and asks again for those in view. */
function resetTable(scrollToTop: boolean): void {
  querySeq++;
  saveState();
  table.reset(columns(), tableOptions(), scrollToTop);
  enableControls();
}

function renderPage(page: TablePageResult): void {
  // A signal seen for the first time gets its column.
  const fresh = page.rows.flatMap((row) => Object.keys(row.signals ?? {})).filter((name, k, all) => !signalNames.includes(name) && all.indexOf(name) === k);
  table.receive(page.offset, page.rows, page.total);
  const pageInfo = byId('page-info');
  pageInfo.textContent = page.total === 0 ? 'No rows match.'
    : `${page.total.toLocaleString('en-US')} row${page.total === 1 ? '' : 's'}${currentFilter() ? ' match' : ''}${page.total > BLOCK_SIZE ? '; scroll for more' : ''}`;
  pageInfo.dataset.total = String(page.total);
  if (fresh.length > 0) {
    signalNames.push(...fresh);
    resetTable(false);
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring

window.addEventListener('message', (event: MessageEvent<TableHostMessage>) => {
  const message = event.data;
  switch (message?.type) {
    case 'info':
      info = message.info;
      renderInfo(message.name);
      byId('error').textContent = '';
      resetTable(true);
      break;
    case 'refused':
      renderInfo(message.name);
      byId('table-facts').textContent = '';
      byId('index-progress').textContent = '';
      byId('error').replaceChildren(sentence('Nuggets cannot show this file: ', { text: message.message }));
      for (const id of ['score-dataset', 'select-subset', 'show-dashboard']) (byId(id) as HTMLButtonElement).disabled = true;
      break;
    case 'index': {
      const wasIndexed = indexed();
      index = message.index;
      renderIndex();
      // The index just finished: the saved order and filters apply now.
      if (indexed() !== wasIndexed && (sort.sortBy !== 'index' || sort.descending || bounds.size > 0 || search.instruction || search.output)) resetTable(true);
      else if (indexed() !== wasIndexed) resetTable(false);
      break;
    }
    case 'scores':
      if (info) resetTable(false);
      break;
    case 'page':
      if (message.seq === querySeq) renderPage(message.page);
      break;
    case 'record':
      markedIndex = message.record.index;
      recordView.show(message.record);
      break;
    case 'error':
      byId('error').textContent = message.message;
      break;
  }
});

const command = (id: string, name: TableCommand): void => byId(id).addEventListener('click', () => post({ type: 'command', command: name }));
command('score-dataset', 'scoreDataset');
command('select-subset', 'selectGoldenSubset');
command('show-dashboard', 'showDashboard');
byId('record-close').addEventListener('click', () => {
  recordView.show(undefined);
  post({ type: 'closeRecord' });
});

renderIndex();
post({ type: 'ready' });
