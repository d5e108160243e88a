/**
 * Every inline badge colour reaches WCAG's 4.5:1 against the editor background of VS Code's default
 * themes (Light Modern / Light+ #FFFFFF, Dark Modern #1F1F1F, Dark+ #1E1E1E, and the high-contrast pair),
 * computed from the colours package.json contributes and extension/decorations.ts uses; and so does every
 * text of the dashboard, on each background it is drawn on (test/webview/themes.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../helpers';
import { TEXT_ON_BACKGROUND, THEMES } from '../webview/themes';

interface Color { id: string; defaults: { light: string; dark: string; highContrast: string; highContrastLight: string } }
const colors = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { contributes: { colors: Color[] } }).contributes.colors;
const BACKGROUNDS = { light: ['#FFFFFF'], dark: ['#1F1F1F', '#1E1E1E'], highContrast: ['#000000'], highContrastLight: ['#FFFFFF'] } as const;

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

test('the contrast formula gives the WCAG reference values', () => {
  assert.equal(contrast('#000000', '#FFFFFF').toFixed(1), '21.0');
  assert.equal(contrast('#777777', '#FFFFFF').toFixed(2), '4.48');
  // The theme chart colours the badges used before: amber (charts.yellow, light) was 3.1:1 on white.
  assert.ok(contrast('#BF8803', '#FFFFFF') < 4.5);
});

test('every colour the badges use is contributed, with 4.5:1 or more on each default theme background', () => {
  const used = [...readFileSync(join(repoRoot, 'extension', 'decorations.ts'), 'utf8').matchAll(/'(nuggets\.badge\.\w+)'/g)].map((m) => m[1]!);
  assert.equal(new Set(used).size, 6, `five score buckets and the stale colour: ${used.join(', ')}`);
  for (const id of used) {
    const color = colors.find((c) => c.id === id);
    assert.ok(color, `${id} is in contributes.colors`);
    for (const [theme, backgrounds] of Object.entries(BACKGROUNDS)) {
      for (const background of backgrounds) {
        const ratio = contrast(color.defaults[theme as keyof typeof BACKGROUNDS], background);
        assert.ok(ratio >= 4.5, `${id} in the ${theme} theme: ${ratio.toFixed(2)}:1 on ${background}`);
      }
    }
  }
});

test('every text of the dashboard reaches 4.5:1 on each background it is drawn on, in Light Modern, Dark Modern and High Contrast', () => {
  for (const [theme, palette] of Object.entries(THEMES)) {
    for (const { text, backgrounds, where } of TEXT_ON_BACKGROUND) {
      for (const background of backgrounds) {
        const ratio = contrast(palette.colors[text]!, palette.colors[background]!);
        assert.ok(ratio >= 4.5, `${text} on ${background} (${where}) in ${theme}: ${ratio.toFixed(2)}:1`);
      }
    }
  }
  // What the demo warning was drawn in before, and is now only a bar beside it: the warning colour, under 4.5:1 on Light Modern's white.
  assert.ok(contrast(THEMES.light.colors['editorWarning-foreground']!, THEMES.light.colors['editor-background']!) < 4.5);
});

test('the dashboard\'s and the Parquet table\'s stylesheets colour text only with the measured colours, and the charts draw their text in the foreground', () => {
  const css = ['dashboard.css', 'parquet-table.css'].map((name) => readFileSync(join(repoRoot, 'media', name), 'utf8')).join('\n').replace(/\/\*[\s\S]*?\*\//g, '');
  const measured = new Set(TEXT_ON_BACKGROUND.map((t) => t.text));
  const colours = [...css.matchAll(/(?:^|[;{\s])color:\s*([^;}]+)/g)].map((m) => m[1]!.trim());
  assert.ok(colours.length >= 8, `text colours found: ${colours.length}`);
  for (const value of colours) {
    const variable = /^var\(--vscode-([\w-]+)/.exec(value)?.[1];
    assert.ok(variable && measured.has(variable), `a text colour the contrast test does not measure: color: ${value}`);
  }
  const charts = readFileSync(join(repoRoot, 'webview', 'charts.ts'), 'utf8');
  assert.match(charts, /const text = read\('--vscode-foreground'/, 'axis labels and ticks in the foreground');
  assert.match(css, /\.chart-tip \{[^}]*color: var\(--vscode-foreground\); background: var\(--vscode-editor-background\)/, 'the tooltip in the foreground on the editor background');
});
