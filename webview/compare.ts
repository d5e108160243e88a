/**
 * The dashboard's Compare Models section: the words of webview/compare_words.ts in the page. Model names are the
 * user's and a model's own text: set with textContent inside <bdi>, so that a right-to-left override in a name
 * cannot reorder the words around it.
 */
import type { CompareModelsResult } from './protocol-types';
import { comparisonFigures, comparisonHeadline } from './compare_words';

/** Fills the section (#comparison) with the comparison, and shows it. */
export function renderComparison(section: HTMLElement, c: CompareModelsResult): void {
  const headline = section.querySelector<HTMLElement>('#comparison-verdict')!;
  headline.replaceChildren(...comparisonHeadline(c).parts.map((part) => {
    if (typeof part === 'string') return document.createTextNode(part);
    const name = document.createElement('bdi');
    name.textContent = part.name;
    return name;
  }));
  const table = section.querySelector<HTMLTableElement>('#comparison-table')!;
  const head = document.createElement('tr');
  for (const title of ['Figure', 'Value', 'What it means']) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = title;
    head.append(th);
  }
  const rows = comparisonFigures(c).map((f) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = f.figure;
    const value = document.createElement('td');
    value.textContent = f.value;
    value.className = 'number';
    const meaning = document.createElement('td');
    meaning.textContent = f.meaning;
    meaning.className = 'meaning';
    tr.append(th, value, meaning);
    return tr;
  });
  table.replaceChildren(head, ...rows);
  section.hidden = false;
}
