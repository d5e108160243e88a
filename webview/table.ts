/**
 * The dashboard's tables: plain, accessible HTML tables. Numeric columns are as wide as their widest
 * value and never cut; text columns share the rest, cut with an ellipsis, with the whole text as the
 * cell's title. A header's button sorts; the separator at its right edge resizes the column by
 * dragging or with the arrow keys. Everything is set as text (textContent), never as HTML.
 */
import type { SignalBound } from './messages';

export interface Column<T> {
  /** Names the column in the DOM (data-column) and remembers its width. */
  key: string;
  title: string;
  kind: 'number' | 'text';
  /** The cell's text, or an element the caller built from text. */
  cell: (row: T) => string | HTMLElement;
  /** Present: the header sorts by this key. */
  sortKey?: string;
  /** The header's tooltip. */
  describe?: string;
  /** Present: the header holds a filter field under its title (the record table's column filters). */
  filter?: ColumnFilter;
}

/** A column's filter field: a range ("0.4..0.6") for numbers, text to search for in text. */
export interface ColumnFilter {
  /** What the field is for, for screen readers: "Filter Score: a range, min..max". */
  label: string;
  placeholder: string;
  value: () => string;
  /** Called as the user types; returns why the text is not a filter ('' when it is one). */
  onInput: (text: string) => string;
}

export interface Sorted {
  key: string;
  descending: boolean;
}

export interface TableOptions<T> {
  sorted?: Sorted;
  onSort?: (key: string) => void;
  /** Column widths set by resizing, by column key, in CSS pixels; kept across renders by the caller. */
  widths: Map<string, number>;
  /** Called for each body row, to mark it and wire it. */
  decorate?: (tr: HTMLTableRowElement, row: T) => void;
}

/** A range as its column's filter field shows it: "0.4..0.6", "2..", "..0.5". */
export const rangeText = (bound: SignalBound | undefined): string => (bound ? `${bound.min ?? ''}..${bound.max ?? ''}` : '');

/** The text of a numeric column's filter as a range; an error message when it is not one. */
export function parseRange(signal: string, text: string): SignalBound | null | string {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  const m = /^(-?[\d.]+(?:e-?\d+)?)?\s*\.\.\s*(-?[\d.]+(?:e-?\d+)?)?$/i.exec(trimmed) ?? /^(-?[\d.]+(?:e-?\d+)?)$/i.exec(trimmed);
  if (!m || (m[1] === undefined && m[2] === undefined)) return 'Type a range as min..max (either side may be left out), e.g. 0.4..0.6';
  const [min, max] = [m[1], m[2]].map((v) => (v === undefined ? undefined : Number(v)));
  if ((min !== undefined && !Number.isFinite(min)) || (max !== undefined && !Number.isFinite(max))) return 'Not a number';
  if (min !== undefined && max !== undefined && !(min < max)) return 'The min must be below the max';
  return { signal, ...(min !== undefined ? { min } : {}), ...(max !== undefined ? { max } : {}) };
}

/** Narrowest a resized text column gets, in CSS pixels (a numeric column never gets narrower than its values). */
const MIN_TEXT_WIDTH = 48;
const KEY_STEP = 16;

export function renderTable<T>(table: HTMLTableElement, columns: readonly Column<T>[], rows: readonly T[], options: TableOptions<T>): void {
  const head = document.createElement('thead');
  const headRow = document.createElement('tr');
  for (const column of columns) headRow.append(headerCell(column, options));
  head.append(headRow);
  const body = document.createElement('tbody');
  for (const row of rows) {
    const tr = document.createElement('tr');
    for (const column of columns) tr.append(bodyCell(column, row));
    options.decorate?.(tr, row);
    body.append(tr);
  }
  table.replaceChildren(head, body);
}

export function headerCell<T>(column: Column<T>, options: TableOptions<T>): HTMLTableCellElement {
  const th = document.createElement('th');
  th.scope = 'col';
  th.className = column.kind;
  th.dataset.column = column.key;
  const width = options.widths.get(column.key);
  if (width !== undefined) th.style.width = `${width}px`;
  if (column.sortKey !== undefined && options.onSort) {
    const key = column.sortKey;
    const sorted = options.sorted?.key === key ? options.sorted : undefined;
    th.dataset.sort = key;
    th.setAttribute('aria-sort', sorted ? (sorted.descending ? 'descending' : 'ascending') : 'none');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'sort';
    button.textContent = column.title + (sorted ? (sorted.descending ? ' ▼' : ' ▲') : '');
    button.title = column.describe ?? `Sort by ${column.title}`;
    const onSort = options.onSort;
    button.addEventListener('click', () => onSort(key));
    th.append(button);
  } else {
    const label = document.createElement('span');
    label.textContent = column.title;
    if (column.describe) label.title = column.describe;
    th.append(label);
  }
  if (column.filter) th.append(filterField(column.filter));
  th.append(resizer(th, column, options.widths));
  return th;
}

function filterField(filter: ColumnFilter): HTMLInputElement {
  const input = document.createElement('input');
  input.type = 'text';
  input.className = 'column-filter';
  input.placeholder = filter.placeholder;
  input.setAttribute('aria-label', filter.label);
  input.value = filter.value();
  input.spellcheck = false;
  input.addEventListener('click', (e) => e.stopPropagation());
  input.addEventListener('input', () => {
    const why = filter.onInput(input.value);
    input.setAttribute('aria-invalid', String(why !== ''));
    input.title = why || filter.label;
  });
  input.title = filter.label;
  return input;
}

export function bodyCell<T>(column: Column<T>, row: T): HTMLTableCellElement {
  const td = document.createElement('td');
  td.className = column.kind;
  td.dataset.column = column.key;
  const content = column.cell(row);
  if (typeof content === 'string') {
    td.textContent = content;
    if (column.kind === 'text') td.title = content; // the whole text, wherever the column cuts it
  } else {
    td.append(content);
    if (column.kind === 'text') td.title = content.textContent ?? '';
  }
  return td;
}

/** The separator at a header's right edge: drag it, or focus it and press ← →, to resize the column. */
function resizer<T>(th: HTMLTableCellElement, column: Column<T>, widths: Map<string, number>): HTMLElement {
  const handle = document.createElement('span');
  handle.className = 'resizer';
  handle.setAttribute('role', 'separator');
  handle.setAttribute('aria-orientation', 'vertical');
  handle.setAttribute('aria-label', `Resize the ${column.title} column`);
  handle.tabIndex = 0;
  const setWidth = (px: number): void => {
    const width = Math.round(Math.max(column.kind === 'text' ? MIN_TEXT_WIDTH : 0, px));
    widths.set(column.key, width);
    th.style.width = `${width}px`;
    handle.setAttribute('aria-valuenow', String(width));
  };
  handle.addEventListener('pointerdown', (down) => {
    down.preventDefault();
    down.stopPropagation();
    const startX = down.clientX;
    const startWidth = th.getBoundingClientRect().width;
    handle.setPointerCapture(down.pointerId);
    const move = (e: PointerEvent): void => setWidth(startWidth + e.clientX - startX);
    const up = (): void => {
      handle.removeEventListener('pointermove', move);
      handle.removeEventListener('pointerup', up);
      handle.removeEventListener('pointercancel', up);
    };
    handle.addEventListener('pointermove', move);
    handle.addEventListener('pointerup', up);
    handle.addEventListener('pointercancel', up);
  });
  handle.addEventListener('click', (e) => e.stopPropagation());
  handle.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    e.preventDefault();
    setWidth(th.getBoundingClientRect().width + (e.key === 'ArrowRight' ? KEY_STEP : -KEY_STEP));
  });
  return handle;
}
