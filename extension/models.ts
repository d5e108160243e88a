/**
 * Which model scores: "Nuggets: Choose Model" writes the `nuggets.model` (and `nuggets.modelVariant`)
 * setting; "Set Hugging Face Token" and "Set Serving API Key" keep credentials in SecretStorage, never
 * in settings. The server downloads hub models on the next Score Dataset, into extension storage, and
 * imports a GGUF model (a file, or one Ollama pulled) there once.
 */
import { basename, dirname, isAbsolute } from 'node:path';
import * as vscode from 'vscode';
import * as protocol from '../server/protocol';
import { SECRET_KEYS, SECTION } from './config';
import { detectServingKind, modelSetting, type ServingKind } from './serving_kind';
import { originOf, originsToAsk, parseServingKey, type ServingKey } from './serving_key';
import type { Ctx } from './ctx';

interface ModelItem extends vscode.QuickPickItem {
  /** The setting's value ('' = the bundled demo model); absent for the items that ask further. */
  model?: string;
  variants?: string[];
  /** A model used before: the variant it was used with. */
  chosenVariant?: string;
  ask?: 'folder' | 'gguf' | 'endpoint' | 'hub';
}

/** A model as the pick list returns it: the `nuggets.model` value ('' = the bundled demo model) and its ONNX export, when one was chosen. */
export interface PickedModel {
  model: string;
  variant?: string;
}

/** Where the pick list opens: its title and placeholder, and the model in effect (marked "current"). */
export interface PickOptions {
  title: string;
  placeHolder: string;
  current: string;
  currentVariant: string;
}

/** The models picked before (Choose Model and Compare Models), most recent first, kept in the extension's global state. */
const USED_BEFORE_KEY = 'nuggets.modelsUsedBefore';
const USED_BEFORE_KEPT = 8;

export function modelsUsedBefore(ctx: Ctx): PickedModel[] {
  const stored = ctx.extensionContext.globalState.get<unknown>(USED_BEFORE_KEY);
  return Array.isArray(stored)
    ? stored.filter((m): m is PickedModel => typeof m?.model === 'string' && m.model !== '' && (m.variant === undefined || typeof m.variant === 'string'))
    : [];
}

/** Remembers a model that was used, first in the list; the demo model is always offered and not remembered. */
export async function rememberModel(ctx: Ctx, picked: PickedModel): Promise<void> {
  if (picked.model === '') return;
  const kept = modelsUsedBefore(ctx).filter((m) => m.model !== picked.model || m.variant !== picked.variant);
  await ctx.extensionContext.globalState.update(USED_BEFORE_KEY, [picked, ...kept].slice(0, USED_BEFORE_KEPT));
}

/** How a remembered model reads in the list: a folder or file by its name, with where it is as the description. */
function usedBeforeItem(m: PickedModel, mark: (value: string) => string): ModelItem {
  const path = isAbsolute(m.model);
  const kind = /^(sglang\+)?https?:\/\//i.test(m.model) ? '$(server)' : /\.gguf$/i.test(m.model) ? '$(file-binary)' : path ? '$(folder)' : '$(history)';
  return {
    label: `${kind} ${path ? basename(m.model) : m.model}${mark(m.model)}`,
    description: [path ? m.model : '', m.variant && m.variant !== 'fp32' ? `variant ${m.variant}` : ''].filter(Boolean).join(' · ') || 'used before',
    model: m.model, ...(m.variant ? { chosenVariant: m.variant } : {}),
  };
}

/**
 * The model pick list that Choose Model and Compare Models share: the demo model, the models used before, the
 * suggested hub models and another, Ollama's pulled models, a folder, a GGUF file, a serving endpoint. Asks
 * further (a folder, a file, an address, a variant) where the kind needs it; undefined when cancelled.
 */
export async function pickModel(ctx: Ctx, { title, placeHolder, current, currentVariant }: PickOptions): Promise<PickedModel | undefined> {
  // The list lives with the engine (server/model/hub.ts); the server answers it without loading anything. Ollama's
  // store is read by the server too: it resolves ollama: models from the same store ($OLLAMA_MODELS).
  const [suggested, ollama] = await Promise.all([
    ctx.client.sendRequest(protocol.suggestedModels).catch((): protocol.SuggestedModel[] => []),
    ctx.client.sendRequest(protocol.ollamaModels).catch((): protocol.OllamaModels => ({ store: '', models: [] })),
  ]);
  const mark = (value: string): string => (value === current ? ' (current)' : '');
  const usedBefore = modelsUsedBefore(ctx);
  const items: ModelItem[] = [
    { label: `$(beaker) Demo model${mark('')}`, description: 'bundled with the extension', detail: 'A 2.76M-parameter GPT-2 trained on the sample data: for trying Nuggets, not for real selections.', model: '' },
    ...(usedBefore.length > 0 ? [{ label: 'Used before', kind: vscode.QuickPickItemKind.Separator }] : []),
    ...usedBefore.map((m) => usedBeforeItem(m, mark)),
    { label: 'Hugging Face hub: downloaded on the next Score Dataset', kind: vscode.QuickPickItemKind.Separator },
    ...suggested.map((m): ModelItem => ({
      label: `$(cloud-download) ${m.spec.replace(/^hf:/, '')}${mark(m.spec)}`,
      description: m.spec === current ? `variant ${currentVariant}` : m.variants.join(' / '),
      detail: m.description, model: m.spec, variants: m.variants,
    })),
    { label: '$(cloud-download) Another hub model…', description: 'hf:owner/name[@revision] with an ONNX export', ask: 'hub' },
    ...(ollama.models.length > 0 ? [{ label: 'Ollama', kind: vscode.QuickPickItemKind.Separator }] : []),
    ...ollama.models.map((spec): ModelItem => ({
      label: `$(package) ${spec.slice('ollama:'.length)}${mark(spec)}`,
      description: `pulled into ${ollama.store}; imported once into the extension's storage`, model: spec,
    })),
    { label: 'Elsewhere', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(folder) A local folder…', description: 'tokenizer.json, config.json and model.onnx (or onnx/model.onnx)', ask: 'folder' },
    { label: '$(file-binary) A GGUF file…', description: 'llama.cpp or LM Studio weights (.gguf), imported once into the extension\'s storage', ask: 'gguf' },
    { label: '$(server) A serving endpoint…', description: 'vLLM, SGLang or another OpenAI-compatible server: http(s)://host:port', ask: 'endpoint' },
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title,
    placeHolder,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!picked) return undefined;

  let model = picked.model;
  let variant: string | undefined = picked.chosenVariant;
  if (picked.ask === 'folder') {
    const folders = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Score with this model' });
    model = folders?.[0]?.fsPath;
  } else if (picked.ask === 'gguf') {
    const files = await vscode.window.showOpenDialog({
      canSelectFiles: true, canSelectFolders: false, canSelectMany: false, openLabel: 'Score with this model',
      filters: { 'GGUF models': ['gguf'] },
      ...(/\.gguf$/i.test(current) && isAbsolute(current) ? { defaultUri: vscode.Uri.file(dirname(current)) } : {}),
    });
    model = files?.[0]?.fsPath;
  } else if (picked.ask === 'endpoint') {
    const typed = (await vscode.window.showInputBox({
      title: 'Nuggets: serving endpoint',
      prompt: 'A vLLM or SGLang server that returns prompt log-probabilities (which one is asked of the server). Several vLLM servers: separate them with commas.',
      placeHolder: 'http://localhost:8000/v1',
      value: /^(sglang\+)?https?:\/\//i.test(current) ? current : '',
      ignoreFocusOut: true,
      validateInput: (text) => (text.split(',').every((e) => /^(sglang\+)?https?:\/\/[^\s/]+/i.test(e.trim())) ? undefined : 'Give http(s)://host:port/v1 (comma-separated for several).'),
    }))?.trim();
    model = typed && await servedModelSetting(typed);
  } else if (picked.ask === 'hub') {  } else if (picked.ask === 'hub') {
    model = (await vscode.window.showInputBox({
      title: 'Nuggets: hub model',
      prompt: 'A hub repository with tokenizer.json, config.json and an ONNX export (onnx/model.onnx), optionally @revision; or one GGUF file of a repository',
      placeHolder: 'hf:owner/name or hf:owner/name/file.gguf',
      value: current.startsWith('hf:') ? current : 'hf:',
      ignoreFocusOut: true,
      validateInput: (text) => (/^hf:[A-Za-z0-9][\w.-]*\/[\w.-]+(\/[\w./-]+\.gguf)?(@.+)?$/i.test(text.trim()) ? undefined : 'Give hf:owner/name, hf:owner/name@revision or hf:owner/name/file.gguf.'),
    }))?.trim();
    // A GGUF file runs its weights as stored: it has no ONNX variants to choose from.
    if (model && !/\.gguf(@.+)?$/i.test(model)) {
      variant = await chooseVariant(model, ['fp32', 'quantized', 'q4'], currentVariant);
      if (!variant) return undefined;
    }
  } else if (picked.variants) {
    variant = await chooseVariant(picked.model!, picked.variants, picked.model === current ? currentVariant : undefined);
    if (!variant) return undefined;
  }
  return model === undefined ? undefined : { model, ...(variant ? { variant } : {}) };
}

export async function chooseModel(ctx: Ctx): Promise<string | undefined> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const current = (config.get<string>('model') ?? '').trim();
  const currentVariant = config.get<string>('modelVariant') ?? 'fp32';
  const picked = await pickModel(ctx, {
    title: 'Nuggets: choose the model that scores records',
    placeHolder: current ? `Now: ${current}. Changing the model marks current scores stale.` : 'Now: the bundled demo model. Changing the model marks current scores stale.',
    current, currentVariant,
  });
  if (!picked) return undefined;
  const { model, variant } = picked;
  await rememberModel(ctx, picked);

  // Write where the value in effect comes from: a workspace value would hide a user setting.
  const target = config.inspect<string>('model')?.workspaceValue !== undefined && vscode.workspace.isTrusted
    ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await config.update('modelVariant', variant === undefined || variant === 'fp32' ? undefined : variant, target);
  await config.update('model', model === '' ? undefined : model, target);
  const shown = model === '' ? 'the bundled demo model' : `${model}${variant && variant !== 'fp32' ? ` (${variant})` : ''}`;
  const where = target === vscode.ConfigurationTarget.Workspace ? 'workspace' : 'user';
  if (model.startsWith('hf:')) {
    const action = await vscode.window.showInformationMessage(
      `Nuggets: scoring with ${shown} (${where} settings). It is downloaded into the extension's storage on the next Score Dataset. Gated or private models need a Hugging Face token.`,
      'Score Dataset', 'Set Hugging Face Token');
    if (action === 'Score Dataset') await vscode.commands.executeCommand('nuggets.scoreDataset');
    else if (action) await vscode.commands.executeCommand('nuggets.setHubToken');
  } else if (/\.gguf$/i.test(model) || model.startsWith('ollama:')) {
    const action = await vscode.window.showInformationMessage(
      `Nuggets: scoring with ${shown} (${where} settings). It is imported into the extension's storage once, before its first scores (Score Dataset shows the import's progress).`,
      'Score Dataset');
    if (action === 'Score Dataset') await vscode.commands.executeCommand('nuggets.scoreDataset');
  } else {
    void vscode.window.showInformationMessage(`Nuggets: scoring with ${shown} (${where} settings).`);
  }
  return model;
}

/**
 * The setting for a typed endpoint: SGLang's is sglang+http://… (scored through its native /generate, the candidate
 * computed once), found by asking the server; where it cannot tell (no answer, a key required), the user says.
 * Several addresses, or one typed with sglang+, are taken as typed.
 */
async function servedModelSetting(typed: string): Promise<string | undefined> {
  if (typed.includes(',') || /^sglang\+/i.test(typed)) return typed;
  // At most a few seconds: the server answers at once or the user is asked.
  let kind: ServingKind | undefined = await detectServingKind(typed);
  if (!kind) {
    const items: Array<vscode.QuickPickItem & { engine: ServingKind }> = [
      { label: 'vLLM', description: 'or another OpenAI-compatible server (/v1/completions with prompt log-probabilities)', engine: 'vllm' },
      { label: 'SGLang', description: 'a server or its gateway: native /generate, each record\'s candidate computed once', engine: 'sglang' },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: `Nuggets: which engine serves ${typed}?`, placeHolder: 'The server did not say (no answer, or it needs a key)' });
    kind = picked?.engine;
  }
  return kind && modelSetting(typed, kind);
}

async function chooseVariant(spec: string, variants: string[], current: string | undefined): Promise<string | undefined> {
  const describe: Record<string, string> = {
    fp32: 'full precision: the reference scores, largest download',
    quantized: '8-bit weights: about a quarter of the size',
    int8: '8-bit weights',
    q4: '4-bit weights: smallest and fastest, scores drift a little',
  };
  const items: Array<vscode.QuickPickItem & { variant?: string }> = variants.map((v, i) => ({
    label: v, description: [i === 0 ? 'recommended' : '', v === current ? 'current' : ''].filter(Boolean).join(', '), detail: describe[v], variant: v,
  }));
  // The engine refuses fp16 exports with the same advice (server/model/folder.ts, FP16_NOT_SCORED).
  items.push({ label: 'fp16 is not offered: its key/values are float16; q4 is smaller and fp32 is the reference', kind: vscode.QuickPickItemKind.Separator });
  const picked = await vscode.window.showQuickPick(items, { title: `Nuggets: which ONNX export of ${spec}?`, placeHolder: 'Another variant is another model: its scores are kept apart' });
  return picked?.variant;
}

/**
 * Stores (or, given an empty value, removes) a credential in SecretStorage; `encode` turns the value into
 * what is stored (undefined: the user cancelled).
 */
async function setSecret(
  ctx: Ctx, key: string, what: string, prompt: string, placeHolder: string,
  encode: (value: string) => Promise<string | undefined> = async (value) => value,
): Promise<boolean | undefined> {
  const secrets = ctx.extensionContext.secrets;
  const had = (await secrets.get(key)) !== undefined;
  const value = await vscode.window.showInputBox({
    title: `Nuggets: ${what}`,
    prompt: had ? `${prompt} Leave empty to remove the stored one.` : prompt,
    placeHolder,
    password: true,
    ignoreFocusOut: true,
  });
  if (value === undefined) return undefined;
  if (value.trim() === '') {
    await secrets.delete(key);
    void vscode.window.showInformationMessage(had ? `Nuggets: ${what} removed.` : `Nuggets: no ${what} stored.`);
    return false;
  }
  const stored = await encode(value.trim());
  if (stored === undefined) return undefined;
  await secrets.store(key, stored);
  void vscode.window.showInformationMessage(`Nuggets: ${what} stored in the editor's secret storage (not in settings).`);
  return true;
}

export function setHubToken(ctx: Ctx): Promise<boolean | undefined> {
  return setSecret(ctx, SECRET_KEYS.hubToken, 'Hugging Face token',
    'Access token for gated or private hub models (huggingface.co/settings/tokens; read access is enough).', 'hf_…');
}

/** The serving key is bound to the endpoint it is entered for: it is sent nowhere else without asking. */
export function setServingApiKey(ctx: Ctx): Promise<boolean | undefined> {
  return setSecret(ctx, SECRET_KEYS.apiKey, 'serving API key', 'The API key of the serving endpoint (vLLM --api-key).', 'API key', async (key) => {
    const endpoint = await vscode.window.showInputBox({
      title: 'Nuggets: serving API key: for which server?',
      prompt: 'The key is sent only to this server (scheme://host:port); Nuggets asks before sending it anywhere else.',
      value: ctx.config.servingOrigins()[0]?.origin ?? 'http://localhost:8000',
      ignoreFocusOut: true,
      validateInput: (text) => (originOf(text) ? undefined : 'Give the server\'s address, e.g. http://localhost:8000.'),
    });
    const origin = endpoint && originOf(endpoint);
    return origin ? JSON.stringify({ key, origins: [origin] } satisfies ServingKey) : undefined;
  });
}

/** Origins the user declined to send the key to, in this session: asked once, not again. */
const declinedOrigins = new Set<string>();

/**
 * Before Score Dataset: the serving key goes only to the origins it is bound to. For an endpoint
 * elsewhere (a workspace's settings can point nuggets.model anywhere), ask once, in a modal; yes binds
 * the key to that origin too, no sends no key there.
 */
export async function confirmServingKey(ctx: Ctx): Promise<void> {
  const secrets = ctx.extensionContext.secrets;
  const stored = parseServingKey(await secrets.get(SECRET_KEYS.apiKey));
  if (!stored) return;
  let changed = false;
  const endpoints = ctx.config.servingOrigins();
  for (const origin of originsToAsk(stored, endpoints.map((e) => e.origin), declinedOrigins)) {
    const fromWorkspace = endpoints.some((e) => e.origin === origin && e.fromWorkspace);
    const entered = stored.origins[0] ? `The key was entered for ${stored.origins[0]}.` : 'The key was stored before Nuggets bound keys to a server.';
    const answer = await vscode.window.showWarningMessage(`Send your serving API key to ${origin}?`, {
      modal: true,
      detail: `${entered} ${origin} comes from the ${fromWorkspace ? 'workspace\'s settings (.vscode/settings.json), which the workspace\'s authors wrote' : 'user settings'} (nuggets.model). Whoever runs that server receives the key.`,
    }, 'Send Key', 'Score Without Key');
    if (answer === 'Send Key') {
      stored.origins.push(origin);
      changed = true;
    } else {
      declinedOrigins.add(origin);
    }
  }
  if (changed) {
    await secrets.store(SECRET_KEYS.apiKey, JSON.stringify(stored));
    if (await ctx.config.loadSecrets(secrets)) ctx.sendSettings();
  }
}
