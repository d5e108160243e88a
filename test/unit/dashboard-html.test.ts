/** The dashboard page's skeleton (extension/dashboard_html.ts): what goes into its attributes stays in them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dashboardHtml } from '../../extension/dashboard_html';

test('a quote or an angle bracket in a resource URI stays inside its attribute: no element or attribute is added', () => {
  const html = dashboardHtml({
    cspSource: 'https://file+.vscode-resource.example',
    scriptUri: 'https://x.example/dist/webview.js"><img src=x onerror=alert(1)>',
    styleUri: 'https://x.example/media/dashboard.css" onload="alert(2)',
    chartStyleUri: 'https://x.example/dist/webview.css',
    nonce: 'testnonce123',
  });
  assert.ok(html.includes('href="https://x.example/media/dashboard.css&quot; onload=&quot;alert(2)"'), 'the style URI is one attribute value');
  assert.ok(html.includes('src="https://x.example/dist/webview.js&quot;>&lt;img src=x onerror=alert(1)>"'), 'the script URI is one attribute value');
  assert.doesNotMatch(html, /<img|onload="/);
  assert.equal(html.match(/<script\b/g)?.length, 1);
});
