/**
 * The one place that reads the `nuggets.*` settings, resolves them (relative paths, the bundled demo
 * model) and applies workspace trust: in an untrusted workspace, workspace and folder values of the
 * model, its variant, the anchors and the template are ignored, no credential is sent, and the server
 * is told not to run or download any model.
 */
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import type { RecordFormatSetting, ServerSecrets, ServerSettings } from '../server/protocol';
import { originOf, parseServingKey } from './serving_key';

export const SECTION = 'nuggets';

/** SecretStorage keys: credentials live there, never in settings files. */
export const SECRET_KEYS = { hubToken: 'nuggets.hubToken', apiKey: 'nuggets.servingApiKey' } as const;

export class Config {
  /** The credentials as last read from SecretStorage (see loadSecrets). */
  private secrets: ServerSecrets = {};

  constructor(private readonly extensionPath: string) {}

  /** Reads the credentials from the extension's SecretStorage; true when they changed since the last read. */
  async loadSecrets(storage: vscode.SecretStorage): Promise<boolean> {
    const [hubToken, stored] = await Promise.all([storage.get(SECRET_KEYS.hubToken), storage.get(SECRET_KEYS.apiKey)]);
    const serving = parseServingKey(stored);
    const secrets: ServerSecrets = { ...(hubToken ? { hubToken } : {}), ...(serving ? { apiKey: serving.key, apiKeyOrigins: serving.origins } : {}) };
    const changed = JSON.stringify(secrets) !== JSON.stringify(this.secrets);
    this.secrets = secrets;
    return changed;
  }

  /** The origins of the serving endpoints in the model setting in effect, and whether they come from the workspace. */
  servingOrigins(): { origin: string; fromWorkspace: boolean }[] {
    const config = vscode.workspace.getConfiguration(SECTION);
    const model = this.path(config, 'model', vscode.workspace.isTrusted, true) ?? '';
    if (!/^(sglang\+)?https?:\/\//i.test(model)) return [];
    const inspected = config.inspect<string>('model');
    const fromWorkspace = inspected?.workspaceFolderValue !== undefined || inspected?.workspaceValue !== undefined;
    const origins = model.split(',').map(originOf).filter((o): o is string => o !== undefined);
    return [...new Set(origins)].map((origin) => ({ origin, fromWorkspace }));
  }

  get bundledModel(): string {
    return join(this.extensionPath, 'models', 'demo');
  }

  /** Whether scores now come from the bundled demo model, whose scores are for trying the tool, not for curation. */
  usesDemoModel(): boolean {
    return this.serverSettings().demoModel === true;
  }

  affects(event: vscode.ConfigurationChangeEvent): boolean {
    return event.affectsConfiguration(SECTION);
  }

  serverSettings(): ServerSettings {
    const trusted = vscode.workspace.isTrusted;
    const config = vscode.workspace.getConfiguration(SECTION);
    const model = this.path(config, 'model', trusted, true) ?? this.bundledModel;
    const anchors = this.path(config, 'anchors', trusted);
    const variant = (trusted ? config.get<string>('modelVariant') : config.inspect<string>('modelVariant')?.globalValue)?.trim();
    const format = config.get<string>('format');
    return {
      model,
      variant: variant && variant !== 'fp32' ? variant : null,
      anchors: anchors ?? null,
      maxAnchorTokens: positiveInteger(config, 'maxAnchorTokens'),
      batchSize: positiveInteger(config, 'batchSize'),
      threads: Math.max(0, Math.floor(config.get<number>('threads') ?? 0)),
      recordsInFlight: positiveInteger(config, 'recordsInFlight'),
      askAboveSeconds: Math.max(0, config.get<number>('askBeforeRunsLongerThan') ?? 60),
      scoringAllowed: trusted,
      demoModel: model === this.bundledModel,
      format: format && RECORD_FORMATS.includes(format as RecordFormatSetting) ? (format as RecordFormatSetting) : 'auto',
      template: this.template(config, trusted),
      turns: config.get<string>('turns') === 'all' ? 'all' : 'last',
      // Untrusted: no model runs or downloads, so no credential leaves the editor.
      ...(trusted ? { secrets: { ...this.secrets } } : {}),
    };
  }

  /**
   * The template setting: auto, paper, chat or chatml as written, else a .jinja file's path made absolute (relative
   * to the workspace folder). Untrusted: only the user's own (global) value counts, as for the model.
   */
  private template(config: vscode.WorkspaceConfiguration, trusted: boolean): string {
    const value = ((trusted ? config.get<string>('template') : config.inspect<string>('template')?.globalValue) ?? '').trim();
    if (value === '' || TEMPLATE_NAMES.includes(value)) return value === '' ? 'auto' : value;
    return this.path(config, 'template', trusted) ?? 'auto';
  }

  /** A path setting, made absolute; undefined when empty. Untrusted: only the user's own (global) value counts. */
  private path(config: vscode.WorkspaceConfiguration, name: string, trusted: boolean, allowSpec = false): string | undefined {
    const value = trusted ? config.get<string>(name) : config.inspect<string>(name)?.globalValue;
    const text = (value ?? '').trim();
    if (text === '') return undefined;
    // A model given as scheme:rest (hf:owner/name, http://host/v1) goes to the engine as written; C:\ is a path.
    if (allowSpec && /^[a-z][a-z0-9+.-]+:/i.test(text)) return text;
    const expanded = text === '~' || text.startsWith('~/') || text.startsWith('~\\') ? join(homedir(), text.slice(1)) : text;
    if (isAbsolute(expanded)) return expanded;
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    return folder ? resolve(folder, expanded) : resolve(expanded);
  }
}

const RECORD_FORMATS: readonly RecordFormatSetting[] = ['auto', 'alpaca', 'messages', 'sharegpt', 'prompt-completion', 'dolly'];
/** Templates named rather than given as a file (nuggets score --template). */
const TEMPLATE_NAMES: readonly string[] = ['auto', 'paper', 'chat', 'chatml'];

/** A positive whole-number setting; an unusable value falls back to the default package.json declares (the only place defaults live). */
function positiveInteger(config: vscode.WorkspaceConfiguration, name: string): number {
  const value = config.get<number>(name);
  return value !== undefined && Number.isFinite(value) && value >= 1 ? Math.floor(value) : config.inspect<number>(name)!.defaultValue!;
}
