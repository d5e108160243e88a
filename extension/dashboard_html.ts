/**
 * The dashboard page's HTML: a fixed skeleton (no dataset text: webview/main.ts fills it with
 * textContent) under a strict Content Security Policy. Scripts run only with the page's nonce;
 * styles come from the extension's media/ and dist/ (and the toolkit's constructed sheets); nothing remote.
 * Kept free of `vscode` so that the webview tests serve the very same page.
 */
import { randomBytes } from 'node:crypto';

export interface DashboardPageOptions {
  /** The webview's resource origin (webview.cspSource). */
  cspSource: string;
  /** URIs (as strings) of dist/webview.js, media/dashboard.css and dist/webview.css (uPlot's) as the webview can load them. */
  scriptUri: string;
  styleUri: string;
  chartStyleUri: string;
  nonce?: string;
}

export function makeNonce(): string {
  return randomBytes(18).toString('base64').replace(/[^A-Za-z0-9]/g, '');
}

export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return `default-src 'none'; script-src 'nonce-${nonce}'; style-src ${cspSource} 'nonce-${nonce}'; font-src ${cspSource}`;
}

export const escapeAttribute = (value: string): string => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export function dashboardHtml(options: DashboardPageOptions): string {
  const nonce = options.nonce ?? makeNonce();
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${escapeAttribute(contentSecurityPolicy(options.cspSource, nonce))}">
  <!-- FAST (the toolkit's base) reads this nonce for the one <style> it probes :focus-visible with. -->
  <meta property="csp-nonce" content="${nonce}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" nonce="${nonce}" href="${escapeAttribute(options.chartStyleUri)}">
  <link rel="stylesheet" nonce="${nonce}" href="${escapeAttribute(options.styleUri)}">
  <title>Nuggets dashboard</title>
</head>
<body>
  <header>
    <h1>Nuggets: <span id="dataset"></span></h1>
    <p id="provenance"></p>
    <div id="demo-note" class="demo-note" role="note" hidden>
      <span>These scores come from the bundled demo model: they are for trying the tool, not for curation.</span>
      <vscode-button id="choose-model" appearance="secondary">Choose Model</vscode-button>
    </div>
    <p id="summary" class="muted">Waiting for the dataset's scores…</p>
    <p id="error" role="alert"></p>
    <p id="file-problem" class="warning" role="alert" hidden></p>
  </header>
  <section id="comparison" aria-labelledby="comparison-title" hidden>
    <h2 id="comparison-title">Compare Models</h2>
    <p id="comparison-verdict"></p>
    <div class="table-scroll"><table id="comparison-table" class="grid" aria-label="What the comparison measured"></table></div>
  </section>
  <div id="overview">
    <section id="histogram" aria-label="Histogram of golden scores">
      <h2>Golden scores</h2>
      <div id="histogram-chart" class="chart-slot" role="img" aria-label="Records per golden score bin; drag over bins to select them"></div>
      <div id="threshold-section" aria-label="Threshold">
        <label for="threshold">Threshold <strong id="threshold-value"></strong></label>
        <input type="range" id="threshold" min="0" max="1" step="0.01" value="0.5">
        <p id="threshold-count" aria-live="polite"></p>
        <div class="actions">
          <vscode-button id="write-subset" aria-describedby="write-subset-why">Write Subset at This Threshold</vscode-button>
          <vscode-checkbox id="with-scores">Add a golden_score field to each record</vscode-checkbox>
        </div>
        <p id="write-subset-why" class="why muted"></p>
        <div class="actions">
          <vscode-button id="export-scores" appearance="secondary">Export Scores…</vscode-button>
          <vscode-dropdown id="export-format" aria-label="Export format">
            <vscode-option value="csv">CSV</vscode-option>
            <vscode-option value="jsonl">JSON Lines</vscode-option>
          </vscode-dropdown>
          <vscode-checkbox id="export-deltas">With every anchor's delta</vscode-checkbox>
        </div>
        <p id="export-why" class="why muted"></p>
      </div>
    </section>
    <section id="signals" aria-label="Signals beside the golden score">
      <h2>Signals</h2>
      <div id="signal-charts"></div>
      <h2>Golden score vs IFD</h2>
      <div id="scatter-chart" class="chart-slot" role="img" aria-label="Golden score against IFD, one point per record; hover a point to name its record, click it to show the record, drag a region to select it"></div>
      <p id="scatter-note" class="muted"></p>
    </section>
  </div>
  <section id="selection" aria-label="Selection" aria-live="polite">
    <span id="selection-summary">All records. Drag over a chart, or type in a column's filter, to select records.</span>
    <vscode-button id="clear-selection" appearance="secondary" disabled>Clear Selection</vscode-button>
  </section>
  <section id="problems" aria-labelledby="problems-title" hidden>
    <h2 id="problems-title">Problem records</h2>
    <p id="problems-note" class="muted"></p>
    <ol id="problems-list"></ol>
  </section>
  <!-- Compare Models' result (its own section, drawn by its own render function). -->
  <vscode-divider></vscode-divider>
  <vscode-panels id="views" aria-label="Records and anchors">
    <vscode-panel-tab id="tab-records">RECORDS</vscode-panel-tab>
    <vscode-panel-tab id="tab-anchors">ANCHOR EFFECTS</vscode-panel-tab>
    <vscode-panel-view id="view-records">
      <div id="records-split" class="records-split">
        <div class="records">
          <div class="toolbar">
            <vscode-checkbox id="only-above">Only records at or above the threshold</vscode-checkbox>
            <span id="page-info" class="muted"></span>
          </div>
          <div id="records-scroll" class="table-scroll virtual" tabindex="-1"><table id="records-table" class="grid" aria-label="Records"></table></div>
        </div>
        <section id="record-view" aria-labelledby="record-title" hidden>
          <div class="record-head">
            <h2 id="record-title"></h2>
            <span class="record-buttons">
              <vscode-button id="record-reveal" appearance="secondary">Show in Editor</vscode-button>
              <vscode-button id="record-close" appearance="secondary">Close</vscode-button>
            </span>
          </div>
          <p id="record-summary" class="muted"></p>
          <p id="record-truncated" class="warning" hidden></p>
          <div id="record-text"></div>
          <div id="neighbours" aria-live="polite"></div>
          <h3 id="record-effects-title">Effect on each anchor</h3>
          <div class="table-scroll effects-scroll"><table id="record-table" class="grid" aria-labelledby="record-effects-title"></table></div>
        </section>
      </div>
    </vscode-panel-view>
    <vscode-panel-view id="view-anchors">
      <div class="anchors">
        <p id="anchors-note" class="muted"></p>
        <p id="anchors-unmoved" class="warning" role="note" hidden></p>
        <div class="table-scroll"><table id="anchors-table" class="grid" aria-label="Anchor effects"></table></div>
      </div>
    </vscode-panel-view>
  </vscode-panels>
  <script nonce="${nonce}" src="${escapeAttribute(options.scriptUri)}"></script>
</body>
</html>
`;
}
