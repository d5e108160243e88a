/**
 * The record table over every record, however many: only the rows in view (and a few around them) are in the
 * DOM, between two spacer rows that keep the scroll bar true to the whole table. Rows come from the server
 * in blocks as they come into view (`fetch`); a block is asked for once per query. The header (with its sort
 * buttons and column filters) stays at the top of the scrolling box.
 */
import { bodyCell, headerCell, type Column, type TableOptions } from './table';

/** Rows rendered above and below the visible ones. */
const OVERSCAN = 10;

export interface VirtualTableOptions<T> extends TableOptions<T> {
  /** Rows per request. */
  blockSize: number;
  /** Ask for the rows from `offset` (answered through `receive`). */
  fetch: (offset: number, limit: number) => void;
}

export class VirtualTable<T> {
  private rows = new Map<number, T>();
  /** The rows of the query before a refresh: shown until their new answer comes, so that a refresh does not flicker. */
  private previous = new Map<number, T>();
  /** The header's columns and order as drawn: a refresh with the same ones keeps the header (and a filter being typed in). */
  private headerKey = '';
  private asked = new Set<number>();
  private total = 0;
  /** Measured from the first row drawn; a guess until then. */
  private rowHeight = 24;
  private columns: readonly Column<T>[] = [];
  private readonly body = document.createElement('tbody');

  constructor(private readonly scroller: HTMLElement, private readonly table: HTMLTableElement, private options: VirtualTableOptions<T>) {
    scroller.addEventListener('scroll', () => this.render(), { passive: true });
    new ResizeObserver(() => this.render()).observe(scroller);
  }

  /**
   * New columns, order or filter (`scrollToTop`): forgets every row and asks again from the top. New scores
   * (not `scrollToTop`): asks again for the rows in view, showing the old ones until the new come.
   */
  reset(columns: readonly Column<T>[], options: VirtualTableOptions<T>, scrollToTop: boolean): void {
    this.columns = columns;
    this.options = options;
    this.previous = scrollToTop ? new Map() : new Map([...this.previous, ...this.rows]);
    this.rows = new Map();
    this.asked.clear();
    const key = JSON.stringify([columns.map((c) => c.key), options.sorted]);
    if (key !== this.headerKey || !this.table.tHead) {
      this.headerKey = key;
      const head = document.createElement('thead');
      const headRow = document.createElement('tr');
      for (const column of columns) headRow.append(headerCell(column, options));
      head.append(headRow);
      this.table.replaceChildren(head, this.body);
    }
    if (scrollToTop) this.scroller.scrollTop = 0;
    this.render();
    this.ask(Math.floor(this.scroller.scrollTop / this.rowHeight));
  }

  /** Rows from the server: the block at `offset`, and how many rows the query has in all. */
  receive(offset: number, rows: readonly T[], total: number): void {
    this.total = total;
    rows.forEach((row, k) => {
      this.rows.set(offset + k, row);
      this.previous.delete(offset + k);
    });
    this.render();
  }

  /** Rows the current query has, as last answered. */
  get count(): number {
    return this.total;
  }

  /** Scrolls row `position` (0-based, in the table's order) into view. */
  scrollTo(position: number): void {
    this.scroller.scrollTop = Math.max(0, position * this.rowHeight - this.scroller.clientHeight / 2);
    this.render();
  }

  /** Draws the rows in view, asking for the blocks that are missing. */
  render(): void {
    const visible = Math.ceil(this.scroller.clientHeight / this.rowHeight) + 1;
    const head = this.table.tHead?.getBoundingClientRect().height ?? 0;
    const first = Math.max(0, Math.floor((this.scroller.scrollTop - head) / this.rowHeight) - OVERSCAN);
    const last = Math.min(this.total, first + visible + 2 * OVERSCAN);
    for (let i = first; i < last; i++) {
      if (!this.rows.has(i)) this.ask(i);
    }
    const children: HTMLTableRowElement[] = [spacer(first * this.rowHeight, this.columns.length)];
    for (let i = first; i < last; i++) {
      const row = this.rows.get(i) ?? this.previous.get(i);
      const tr = document.createElement('tr');
      tr.dataset.position = String(i);
      if (row === undefined) {
        tr.className = 'loading';
        const td = document.createElement('td');
        td.colSpan = this.columns.length;
        td.textContent = '…';
        tr.append(td);
      } else {
        for (const column of this.columns) tr.append(bodyCell(column, row));
        this.options.decorate?.(tr, row);
      }
      // Stripes follow the row's place in the whole table, not in the few rows drawn: they stay put while scrolling.
      tr.classList.toggle('striped', i % 2 === 1);
      children.push(tr);
    }
    children.push(spacer((this.total - last) * this.rowHeight, this.columns.length));
    this.body.replaceChildren(...children);
    const drawn = children[1];
    if (drawn && drawn.className !== 'loading' && drawn.offsetHeight > 0 && Math.abs(drawn.offsetHeight - this.rowHeight) > 0.5) {
      // The real row height, once known: spacers and positions follow it.
      this.rowHeight = drawn.offsetHeight;
      this.render();
    }
  }

  private ask(position: number): void {
    const start = Math.floor(position / this.options.blockSize) * this.options.blockSize;
    if (this.asked.has(start)) return;
    this.asked.add(start);
    this.options.fetch(start, this.options.blockSize);
  }
}

function spacer(height: number, span: number): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.className = 'spacer';
  tr.setAttribute('aria-hidden', 'true');
  const td = document.createElement('td');
  td.colSpan = Math.max(1, span);
  td.style.height = `${Math.max(0, height)}px`;
  tr.append(td);
  return tr;
}
