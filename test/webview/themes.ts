/**
 * The --vscode-* colours the dashboard uses, as VS Code sets them in its default themes: Light Modern and
 * Dark Modern (extensions/theme-defaults/themes/light_modern.json, dark_modern.json) and High Contrast
 * (hc_black.json), with the workbench's registered defaults for the keys a theme leaves out. A key a theme
 * sets to nothing (high contrast's list selection) is given as what the dashboard's CSS falls back to.
 * The contrast test measures them; the webview tests set them on the page to draw it in each theme.
 */
export type ThemeName = 'light' | 'dark' | 'highContrast';

export interface Palette {
  /** VS Code's body class for the theme kind. */
  bodyClass: string;
  colors: Record<string, string>;
}

export const THEMES: Record<ThemeName, Palette> = {
  light: {
    bodyClass: 'vscode-light',
    colors: {
      'editor-background': '#FFFFFF',
      foreground: '#3B3B3B',
      descriptionForeground: '#3B3B3B',
      errorForeground: '#F85149',
      'editorWarning-foreground': '#BF8803',
      'textLink-foreground': '#005FB8',
      focusBorder: '#005FB8',
      'list-inactiveSelectionBackground': '#E4E6F1',
      'list-hoverBackground': '#F2F2F2',
      'list-activeSelectionBackground': '#E8E8E8',
      'list-activeSelectionForeground': '#000000',
      'input-background': '#FFFFFF',
      'input-foreground': '#3B3B3B',
      'input-placeholderForeground': '#767676',
      'panel-border': '#E5E5E5',
      'widget-border': '#E5E5E5',
      'charts-blue': '#1A85FF',
      'charts-purple': '#652D90',
      'charts-red': '#E51400',
      'charts-green': '#388A34',
    },
  },
  dark: {
    bodyClass: 'vscode-dark',
    colors: {
      'editor-background': '#1F1F1F',
      foreground: '#CCCCCC',
      descriptionForeground: '#9D9D9D',
      errorForeground: '#F85149',
      'editorWarning-foreground': '#CCA700',
      'textLink-foreground': '#4DAAFC',
      focusBorder: '#0078D4',
      'list-inactiveSelectionBackground': '#37373D',
      'list-hoverBackground': '#2A2D2E',
      'list-activeSelectionBackground': '#04395E',
      'list-activeSelectionForeground': '#FFFFFF',
      'input-background': '#313131',
      'input-foreground': '#CCCCCC',
      'input-placeholderForeground': '#989898',
      'panel-border': '#2B2B2B',
      'widget-border': '#313131',
      'charts-blue': '#3794FF',
      'charts-purple': '#B180D7',
      'charts-red': '#F14C4C',
      'charts-green': '#89D185',
    },
  },
  highContrast: {
    bodyClass: 'vscode-high-contrast',
    colors: {
      'editor-background': '#000000',
      foreground: '#FFFFFF',
      // The foreground at 70 % over black.
      descriptionForeground: '#B3B3B3',
      errorForeground: '#F48771',
      'editorWarning-foreground': '#FFD370',
      'textLink-foreground': '#21A6FF',
      focusBorder: '#F38518',
      // Unset in high contrast: the CSS falls back to transparent (the background) and the foreground.
      'list-inactiveSelectionBackground': '#000000',
      // White at 10 % over black.
      'list-hoverBackground': '#1A1A1A',
      'list-activeSelectionBackground': '#000000',
      'list-activeSelectionForeground': '#FFFFFF',
      'input-background': '#000000',
      'input-foreground': '#FFFFFF',
      'input-placeholderForeground': '#B3B3B3',
      'panel-border': '#6FC3DF',
      'widget-border': '#6FC3DF',
      'charts-blue': '#3794FF',
      'charts-purple': '#B180D7',
      'charts-red': '#F14C4C',
      'charts-green': '#89D185',
    },
  },
};

/**
 * Every text colour of the dashboard with the backgrounds it is drawn on (media/dashboard.css and the charts'
 * canvas, webview/charts.ts): the body, a striped row, a hovered row, the marked row, a filter field.
 */
export const TEXT_ON_BACKGROUND: readonly { text: string; backgrounds: readonly string[]; where: string }[] = [
  { text: 'foreground', backgrounds: ['editor-background', 'list-inactiveSelectionBackground', 'list-hoverBackground'], where: 'text, headings, warnings, errors, chart axes and tooltips, table rows' },
  { text: 'descriptionForeground', backgrounds: ['editor-background'], where: 'notes and explanations (never in a table row)' },
  { text: 'list-activeSelectionForeground', backgrounds: ['list-activeSelectionBackground'], where: 'the marked row' },
  { text: 'textLink-foreground', backgrounds: ['editor-background'], where: 'a column header under the pointer' },
  { text: 'input-foreground', backgrounds: ['input-background'], where: 'a column filter' },
  { text: 'input-placeholderForeground', backgrounds: ['input-background'], where: 'a column filter\'s placeholder' },
];

/** A page script that sets a palette's variables on the body, as VS Code does in a webview. */
export function applyTheme(name: ThemeName): string {
  const palette = THEMES[name];
  return `(() => {
    document.body.classList.remove('vscode-light', 'vscode-dark', 'vscode-high-contrast');
    document.body.classList.add(${JSON.stringify(palette.bodyClass)});
    for (const [key, value] of Object.entries(${JSON.stringify(palette.colors)})) document.body.style.setProperty('--vscode-' + key, value);
  })()`;
}
