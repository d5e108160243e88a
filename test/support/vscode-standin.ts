/**
 * A stand-in for the `vscode` module, so that unit tests can import extension/ code outside the editor.
 * The test bundles keep `vscode` external (tools/build.mjs), so importing this file first puts the stand-in
 * where Node's `require('vscode')` finds it. It holds only what the extension's trust and key guards use,
 * and it records what the extension asked the user and wrote.
 *
 * Settings are layered as VS Code inspects them (default from package.json, user, workspace, folder); get()
 * returns the value in effect WITHOUT VS Code's own untrusted-workspace filtering (package.json's
 * restrictedConfigurations), so that the tests see the extension's own guard, which also covers settings that
 * list leaves out.
 */
import { readFileSync } from 'node:fs';
import Module from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '../helpers';

/** A question the extension put to the user (a message with buttons, an input box or a quick pick). */
export interface Prompt {
  kind: 'warning' | 'information' | 'input' | 'quickPick' | 'openDialog';
  message: string;
  /** showWarningMessage's { modal, detail }, or the input box's / quick pick's options. */
  options: Record<string, unknown> | undefined;
  /** The buttons, or the quick pick's items. */
  items: unknown[];
}

interface SettingLayers {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

const ConfigurationTarget = { Global: 1, Workspace: 2, WorkspaceFolder: 3 } as const;

/** The extension's declared settings and their defaults: package.json is the only place defaults live. */
const declared = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, { default?: unknown }> } };
}).contributes.configuration.properties;

/** The editor as the extension sees it; `reset()` before each test. */
export class StandInEditor {
  trusted = true;
  workspaceFolder: string | undefined;
  /** Setting layers by full name (`nuggets.model`). */
  readonly settings = new Map<string, SettingLayers>();
  readonly prompts: Prompt[] = [];
  readonly updates: { name: string; value: unknown; target: number }[] = [];
  readonly secrets = new StandInSecrets();
  /** The extension's global state (ExtensionContext.globalState): what it remembers across sessions. */
  readonly globalState = new StandInMemento();
  /** How the user answers each prompt (a button's title, an input's text, a picked item); undefined: dismissed (Esc, Cancel). */
  answer: (prompt: Prompt) => unknown = () => undefined;

  reset(): void {
    this.trusted = true;
    this.workspaceFolder = undefined;
    this.settings.clear();
    this.prompts.length = 0;
    this.updates.length = 0;
    this.secrets.values.clear();
    this.secrets.writes.length = 0;
    this.globalState.values.clear();
    this.answer = () => undefined;
  }

  /** Sets one layer of a setting: `user` is the global value. */
  set(name: string, layer: 'user' | 'workspace' | 'folder', value: unknown): void {
    const layers = this.settings.get(name) ?? {};
    layers[layer === 'user' ? 'globalValue' : layer === 'workspace' ? 'workspaceValue' : 'workspaceFolderValue'] = value;
    this.settings.set(name, layers);
  }

  private ask(prompt: Prompt): Promise<unknown> {
    this.prompts.push(prompt);
    return Promise.resolve(this.answer(prompt));
  }

  private configuration(section: string): object {
    const full = (name: string): string => `${section}.${name}`;
    const inspect = (name: string): Record<string, unknown> => ({ key: full(name), defaultValue: declared[full(name)]?.default, ...this.settings.get(full(name)) });
    return {
      get: (name: string, fallback?: unknown): unknown => {
        const layers = inspect(name);
        return layers['workspaceFolderValue'] ?? layers['workspaceValue'] ?? layers['globalValue'] ?? layers['defaultValue'] ?? fallback;
      },
      inspect,
      update: (name: string, value: unknown, target: number): Promise<void> => {
        this.updates.push({ name: full(name), value, target });
        const layer = target === ConfigurationTarget.Global ? 'user' : target === ConfigurationTarget.Workspace ? 'workspace' : 'folder';
        this.set(full(name), layer, value);
        return Promise.resolve();
      },
    };
  }

  /** What `require('vscode')` returns: the parts of the API the tested modules call. */
  api(): object {
    const message = (kind: 'warning' | 'information') => (text: string, ...rest: unknown[]): Promise<unknown> => {
      const options = typeof rest[0] === 'object' && rest[0] !== null ? (rest.shift() as Record<string, unknown>) : undefined;
      return this.ask({ kind, message: text, options, items: rest });
    };
    const standIn = this;
    return {
      workspace: {
        // Read at each use, as VS Code's are.
        get isTrusted(): boolean {
          return standIn.trusted;
        },
        get workspaceFolders(): object[] | undefined {
          return standIn.workspaceFolder ? [{ uri: { scheme: 'file', fsPath: standIn.workspaceFolder } }] : undefined;
        },
        getConfiguration: (section: string) => this.configuration(section),
      },
      window: {
        showWarningMessage: message('warning'),
        showInformationMessage: message('information'),
        showInputBox: (options: Record<string, unknown>) => this.ask({ kind: 'input', message: String(options['title'] ?? ''), options, items: [] }),
        showQuickPick: (items: unknown[], options: Record<string, unknown>) => this.ask({ kind: 'quickPick', message: String(options['title'] ?? ''), options, items }),
        // Answered with paths; the extension gets them as file URIs.
        showOpenDialog: async (options: Record<string, unknown>) => {
          const paths = (await this.ask({ kind: 'openDialog', message: String(options['openLabel'] ?? ''), options, items: [] })) as string[] | undefined;
          return paths?.map((path) => ({ scheme: 'file', fsPath: path, path }));
        },
      },
      commands: { executeCommand: (): Promise<undefined> => Promise.resolve(undefined) },
      ConfigurationTarget,
      QuickPickItemKind: { Separator: -1, Default: 0 },
      Uri: { file: (path: string) => ({ scheme: 'file', fsPath: path, path }) },
    };
  }
}

/** A Memento (the extension's globalState): values by key. */
export class StandInMemento {
  readonly values = new Map<string, unknown>();

  get<T>(key: string, fallback?: T): T | undefined {
    return this.values.has(key) ? (this.values.get(key) as T) : fallback;
  }

  update(key: string, value: unknown): Promise<void> {
    if (value === undefined) this.values.delete(key);
    else this.values.set(key, value);
    return Promise.resolve();
  }
}

/** The extension's SecretStorage: what it holds, and every write in order. */
export class StandInSecrets {
  readonly values = new Map<string, string>();
  readonly writes: { key: string; value: string | undefined }[] = [];

  get(key: string): Promise<string | undefined> {
    return Promise.resolve(this.values.get(key));
  }

  store(key: string, value: string): Promise<void> {
    this.values.set(key, value);
    this.writes.push({ key, value });
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.values.delete(key);
    this.writes.push({ key, value: undefined });
    return Promise.resolve();
  }
}

export const editor = new StandInEditor();

/** Where require('vscode') resolves to: a name no file has, kept in Node's module cache. */
const STAND_IN_ID = '\0nuggets-vscode-standin';
const loader = Module as unknown as {
  _resolveFilename(request: string, ...rest: unknown[]): string;
  _cache: Record<string, unknown>;
};
const resolveFilename = loader._resolveFilename;
loader._resolveFilename = function (request: string, ...rest: unknown[]): string {
  return request === 'vscode' ? STAND_IN_ID : resolveFilename.call(this, request, ...rest);
};
loader._cache[STAND_IN_ID] = { id: STAND_IN_ID, filename: STAND_IN_ID, loaded: true, exports: editor.api() };
