/**
 * What the dashboard (main.ts) and the Parquet table (parquet-table.ts) both draw: text helpers that keep dataset
 * text as text (textContent, each piece of it isolated in a <bdi>), the record table's rows and its filter as the
 * server takes it, and the record view: one record whole (its
 * fields as typed, or every turn of a conversation with the scored turn marked) and its delta on every anchor,
 * sortable. Both pages hold the same elements for it (#record-view, #record-title, #record-summary,
 * #record-truncated, #record-text, #record-table, and #records-split around the table and the view).
 */
import type { RecordEffectsResult, RecordFilter, RecordProblemInfo, SignalBound, TableRow } from './messages';
import { renderTable } from './table';

/**
 * A row of the record table: the classes the stylesheet marks it by (stale, cut to fit, a problem record, the one the
 * record view shows), focusable, and opened by a click or Enter.
 */
export function decorateRecordRow(tr: HTMLTableRowElement, row: TableRow, marked: boolean, title: string, open: () => void): void {
  tr.className = 'record';
  tr.dataset.index = String(row.index);
  tr.classList.toggle('stale', row.stale);
  tr.classList.toggle('truncated', row.score?.truncated === true);
  tr.classList.toggle('problem', row.problem !== undefined);
  markRecordRow(tr, marked);
  tr.tabIndex = 0;
  tr.title = title;
  tr.addEventListener('click', open);
  tr.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') open();
  });
}

/** Marks the record table's row of `index`, and no other, as the one the record view shows. */
export function markRecordRows(index: number | undefined): void {
  for (const tr of document.querySelectorAll<HTMLTableRowElement>('#records-table tr.record')) markRecordRow(tr, Number(tr.dataset.index) === index);
}

function markRecordRow(tr: HTMLTableRowElement, marked: boolean): void {
  tr.classList.toggle('marked', marked);
  tr.setAttribute('aria-selected', String(marked));
}

/** The table's filter as the server takes it: the ranges, and the text searches that are not blank; undefined for none. */
export function recordFilterOf(bounds: ReadonlyMap<string, SignalBound>, search: { instruction: string; output: string }): RecordFilter | undefined {
  const filter: RecordFilter = {
    ...(bounds.size > 0 ? { bounds: [...bounds.values()] } : {}),
    ...(search.instruction.trim() ? { instruction: search.instruction } : {}),
    ...(search.output.trim() ? { output: search.output } : {}),
  };
  return Object.keys(filter).length > 0 ? filter : undefined;
}

export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
};

export function element<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K];
export function element(tag: string, text?: string, className?: string): HTMLElement;
export function element(tag: string, text?: string, className?: string): HTMLElement {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

/**
 * Text from the dataset or a model's name inside a sentence, each piece in a <bdi>: right-to-left text (or a
 * stray direction mark) in one piece cannot reorder the words around it.
 */
export function sentence(...parts: (string | { text: string })[]): HTMLElement {
  const span = element('span');
  span.append(...parts.map((p) => (typeof p === 'string' ? p : element('bdi', p.text))));
  return span;
}

/**
 * The order after a click on column `key`: the same column flips; a new one starts with its most useful
 * order, best first, except the position column (`ascendingKey`), which starts from the top.
 */
export function nextSort<K extends string>(current: { key: K; descending: boolean }, key: K, ascendingKey: K): { key: K; descending: boolean } {
  return { key, descending: key === current.key ? !current.descending : key !== ascendingKey };
}

/**
 * The record's index (0-based, as in the scores file, the exports and the command line); marks a record cut from
 * the left to fit the model's context (its golden score saw only its end) and a problem record (never selected).
 */
export function indexCell(index: number, truncated: boolean, problem?: RecordProblemInfo): string | HTMLElement {
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

export const anchorText = (a: { instruction: string; input: string }): string | HTMLElement => (a.input ? sentence({ text: a.instruction }, ' — ', { text: a.input }) : a.instruction);

function deltaText(delta: number | null, self: boolean): string {
  if (self) return 'itself, left out';
  return delta === null ? 'not scored' : `${delta > 0 ? '+' : ''}${delta.toFixed(3)}`;
}

/** One field of the record, whole: a heading and its text, kept as typed (line breaks and all), isolated from the page's direction. */
function field(label: string, text: string, className = 'record-field'): HTMLElement {
  const box = element('div', undefined, className);
  const body = element('div', text === '' ? '(empty)' : text, 'record-field-text');
  body.dir = 'auto';
  body.classList.toggle('empty', text === '');
  box.append(element('h4', label), body);
  return box;
}

/** The whole record: instruction, input and output; for a conversation, every turn with its role, the scored one marked. */
function renderRecordText(r: RecordEffectsResult): void {
  const box = byId('record-text');
  if (!r.turns) {
    box.replaceChildren(field('Instruction', r.instruction), ...(r.input ? [field('Input', r.input)] : []), field('Output', r.output));
    return;
  }
  const list = element('ol', undefined, 'turns');
  list.setAttribute('aria-label', `${r.turns.length} turns`);
  r.turns.forEach((turn, k) => {
    const scored = k === r.scoredTurn;
    const item = field(scored ? `${turn.role} — the scored turn` : turn.role, turn.content, `record-field turn ${turn.role}${scored ? ' scored' : ''}`);
    const li = element('li');
    li.dataset.role = turn.role;
    li.classList.toggle('scored', scored);
    li.append(...item.childNodes);
    li.className = item.className;
    list.append(li);
  });
  box.replaceChildren(list);
}

/** The record view beside the table: the record it shows (none while closed), its anchors' order, and their columns' widths. */
export class RecordView {
  record: RecordEffectsResult | undefined;
  private sort: { key: 'index' | 'delta'; descending: boolean } = { key: 'delta', descending: true };
  private readonly widths = new Map<string, number>();

  /** Shows `record` (undefined: closes the view). */
  show(record: RecordEffectsResult | undefined): void {
    this.record = record;
    this.render();
  }

  render(): void {
    const record = this.record;
    const view = byId('record-view');
    const split = byId('records-split');
    if (!record) {
      view.hidden = true;
      split.classList.remove('with-record');
      return;
    }
    view.hidden = false;
    split.classList.add('with-record');
    view.dataset.index = String(record.index);
    byId('record-title').textContent = `Record index ${record.index}`;
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
    renderRecordText(record);
    const sort = this.sort;
    const effects = [...record.effects].sort((a, b) => {
      if (sort.key === 'index') return (sort.descending ? -1 : 1) * (a.index - b.index);
      if (a.delta === null || b.delta === null) return a.delta !== null ? -1 : b.delta !== null ? 1 : a.index - b.index;
      return (sort.descending ? -1 : 1) * (a.delta - b.delta) || a.index - b.index;
    });
    renderTable(byId<HTMLTableElement>('record-table'), [
      { key: 'index', title: '#', kind: 'number', sortKey: 'index', cell: (e) => String(e.index + 1) },
      { key: 'delta', title: 'Δ (nats)', kind: 'number', sortKey: 'delta', describe: 'Sort by delta: one-shot minus zero-shot log-probability of the anchor\'s response', cell: (e) => deltaText(e.delta, e.index === s?.selfAnchor) },
      { key: 'anchor', title: 'Anchor', kind: 'text', cell: anchorText },
    ], effects, {
      widths: this.widths,
      sorted: sort,
      onSort: (key) => {
        this.sort = nextSort(this.sort, key as 'index' | 'delta', 'index');
        this.render();
      },
      decorate: (tr, effect) => {
        tr.className = 'effect';
        tr.dataset.index = String(effect.index);
        tr.classList.toggle('helps', effect.delta !== null && effect.delta > 0);
        tr.classList.toggle('hurts', effect.delta !== null && effect.delta < 0);
      },
    });
  }
}
