/**
 * How the dashboard's tables fit, measured in the page (the webview tests and the end-to-end test run
 * it in the page's frame): every visible numeric cell (header and body) whose text is wider than its
 * content box, and every text cell that is cut without its whole text as title.
 */
export interface Layout {
  /** Visible numeric cells measured. */
  numbers: number;
  /** "table column: text width > box width" for each numeric cell whose text does not fit. */
  cutNumbers: string[];
  /** Visible text cells, and those cut (text wider than the cell). */
  texts: number;
  cutTexts: number;
  /** The text of cut cells whose title is not their whole text. */
  cutWithoutTitle: string[];
}

/** An expression for page.evaluate / frame.evaluate, whose value is a Layout. */
export const MEASURE_LAYOUT = `(() => {
  const visible = (e) => e.getClientRects().length > 0;
  // A header's text is its sort button or label (its resize handle sits in its padding).
  const textWidth = (e) => { const r = document.createRange(); r.selectNodeContents(e.tagName === 'TH' ? e.firstElementChild : e); return r.getBoundingClientRect().width; };
  const box = (e) => { const s = getComputedStyle(e); return e.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); };
  const numbers = [...document.querySelectorAll('table.grid .number')].filter(visible);
  const texts = [...document.querySelectorAll('table.grid td.text')].filter(visible);
  const cut = texts.filter((e) => e.scrollWidth > e.clientWidth + 0.5);
  return {
    numbers: numbers.length,
    cutNumbers: numbers.filter((e) => textWidth(e) > box(e) + 0.5 || e.scrollWidth > e.clientWidth)
      .map((e) => e.closest('table').id + ' ' + e.dataset.column + ': ' + JSON.stringify(e.textContent) + ' ' + textWidth(e).toFixed(1) + ' > ' + box(e)),
    texts: texts.length,
    cutTexts: cut.length,
    cutWithoutTitle: cut.filter((e) => e.title !== e.textContent).map((e) => e.textContent),
  };
})()`;
