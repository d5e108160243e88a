/**
 * The one place that reads the `nuggets.*` settings, resolves them (relative paths, the bundled demo
 * model) and applies workspace trust: in an untrusted workspace, workspace and folder values of the
 * paths are ignored and the server is told not to run any model.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import type { ServerSettings } from '../server/protocol';

export const SECTION = 'nuggets';

export class Config {
  constructor(private readonly extensionPath: string) {}

  get bundledModel(): string {
    return join(this.extensionPath, 'models', 'demo');
  }

  affects(event: vscode.ConfigurationChangeEvent): boolean {
    return event.affectsConfiguration(SECTION);
  }

  serverSettings(): ServerSettings {
    const trusted = vscode.workspace.isTrusted;
    const config = vscode.workspace.getConfiguration(SECTION);
    const model = this.path(config, 'model', trusted, true);
    const anchors = this.path(config, 'anchors', trusted);
    return {
      model: model ?? this.bundledModel,
      anchors: anchors ?? null,
      maxAnchorTokens: positiveInteger(config.get<number>('maxAnchorTokens'), 200),
      batchSize: positiveInteger(config.get<number>('batchSize'), 16),
      threads: Math.max(0, Math.floor(config.get<number>('threads') ?? 0)),
      scoringAllowed: trusted,
    };
  }

  /** A path setting, made absolute; undefined when empty. Untrusted: only the user's own (global) value counts. */
  private path(config: vscode.WorkspaceConfiguration, name: string, trusted: boolean, allowSpec = false): string | undefined {
    const value = trusted ? config.get<string>(name) : config.inspect<string>(name)?.globalValue;
    const text = (value ?? '').trim();
    if (text === '') return undefined;
    // A model given as scheme:rest (hf:owner/name, http://host/v1) goes to the engine as written; C:\ is a path.
    if (allowSpec && /^[a-z][a-z0-9+.-]+:/i.test(text)) return text;
    const expanded = text === '~' || text.startsWith('~/') ? join(homedir(), text.slice(1)) : text;
    if (isAbsolute(expanded)) return expanded;
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    return folder ? resolve(folder, expanded) : resolve(expanded);
  }
}

function positiveInteger(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isFinite(value) && value >= 1 ? Math.floor(value) : fallback;
}
