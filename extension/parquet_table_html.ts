/**
 * The Parquet table page's HTML: a fixed skeleton (no dataset text, not even the file's name:
 * webview/parquet-table.ts fills it with textContent) under the dashboard's strict Content Security Policy
 * (dashboard_html.ts): scripts run only with the page's nonce, styles come from the extension's media/, nothing
 * remote. Kept free of `vscode` so that the webview tests serve the very same page.
 */
import { contentSecurityPolicy, escapeAttribute, makeNonce } from './dashboard_html';

export interface TablePageOptions {
  /** The webview's resource origin (webview.cspSource). */
  cspSource: string;
  /** URIs (as strings) of dist/parquet-table.js, media/dashboard.css and media/parquet-table.css as the webview can load them. */
  scriptUri: string;
  styleUri: string;
  tableStyleUri: string;
  nonce?: string;
}

export function parquetTableHtml(options: TablePageOptions): string {
  const nonce = options.nonce ?? makeNonce();
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${escapeAttribute(contentSecurityPolicy(options.cspSource, nonce))}">
  <meta property="csp-nonce" content="${nonce}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" nonce="${nonce}" href="${escapeAttribute(options.styleUri)}">
  <link rel="stylesheet" nonce="${nonce}" href="${escapeAttribute(options.tableStyleUri)}">
  <title>Nuggets Parquet table</title>
</head>
<body class="table-page">
  <header>
    <h1>Nuggets: <span id="dataset"></span></h1>
    <p id="table-facts" class="muted">Reading the file's footer…</p>
    <p id="index-progress" class="muted" aria-live="polite"></p>
    <p id="whole-note" class="warning" role="note" hidden></p>
    <div class="actions" id="table-actions">
      <vscode-button id="score-dataset">Score Dataset</vscode-button>
      <vscode-button id="select-subset" appearance="secondary">Select Golden Subset</vscode-button>
      <vscode-button id="show-dashboard" appearance="secondary">Show Dashboard</vscode-button>
    </div>
    <p id="error" role="alert"></p>
  </header>
  <div id="records-split" class="records-split">
    <div class="records">
      <div class="toolbar"><span id="page-info" class="muted"></span></div>
      <div id="records-scroll" class="table-scroll virtual" tabindex="-1"><table id="records-table" class="grid" aria-label="Rows of the file"></table></div>
    </div>
    <section id="record-view" aria-labelledby="record-title" hidden>
      <div class="record-head">
        <h2 id="record-title"></h2>
        <span class="record-buttons">
          <vscode-button id="record-close" appearance="secondary">Close</vscode-button>
        </span>
      </div>
      <p id="record-summary" class="muted"></p>
      <p id="record-truncated" class="warning" hidden></p>
      <div id="record-text"></div>
      <h3 id="record-effects-title">Effect on each anchor</h3>
      <div class="table-scroll effects-scroll"><table id="record-table" class="grid" aria-labelledby="record-effects-title"></table></div>
    </section>
  </div>
  <script nonce="${nonce}" src="${escapeAttribute(options.scriptUri)}"></script>
</body>
</html>
`;
}
