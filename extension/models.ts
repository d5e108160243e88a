/**
 * Which model scores: "Nuggets: Choose Model" writes the `nuggets.model` (and `nuggets.modelVariant`)
 * setting; "Set Hugging Face Token" and "Set Serving API Key" keep credentials in SecretStorage, never
 * in settings. The server downloads hub models on the next Score Dataset, into extension storage.
 */
import * as vscode from 'vscode';
import * as protocol from '../server/protocol';
import { SECRET_KEYS, SECTION } from './config';
import type { Ctx } from './ctx';

interface ModelItem extends vscode.QuickPickItem {
  /** The setting's value ('' = the bundled demo model); absent for the items that ask further. */
  model?: string;
  variants?: string[];
  ask?: 'folder' | 'endpoint' | 'hub';
}

export async function chooseModel(ctx: Ctx): Promise<string | undefined> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const current = (config.get<string>('model') ?? '').trim();
  const currentVariant = config.get<string>('modelVariant') ?? 'fp32';
  // The list lives with the engine (server/model/hub.ts); the server answers it without loading anything.
  const suggested = await ctx.client.sendRequest(protocol.suggestedModels).catch((): protocol.SuggestedModel[] => []);
  const mark = (value: string): string => (value === current ? ' (current)' : '');
  const items: ModelItem[] = [
    { label: `$(beaker) Demo model${mark('')}`, description: 'bundled with the extension', detail: 'A 2.76M-parameter GPT-2 trained on the sample data: for trying Nuggets, not for real selections.', model: '' },
    { label: 'Hugging Face hub: downloaded on the next Score Dataset', kind: vscode.QuickPickItemKind.Separator },
    ...suggested.map((m): ModelItem => ({
      label: `$(cloud-download) ${m.spec.replace(/^hf:/, '')}${mark(m.spec)}`,
      description: m.spec === current ? `variant ${currentVariant}` : m.variants.join(' / '),
      detail: m.description, model: m.spec, variants: m.variants,
    })),
    { label: '$(cloud-download) Another hub model…', description: 'hf:owner/name[@revision] with an ONNX export', ask: 'hub' },
    { label: 'Elsewhere', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(folder) A local folder…', description: 'tokenizer.json, config.json and model.onnx (or onnx/model.onnx)', ask: 'folder' },
    { label: '$(server) A serving endpoint…', description: 'vLLM or another OpenAI-compatible server: http(s)://host:port/v1', ask: 'endpoint' },
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title: 'Nuggets: choose the model that scores records',
    placeHolder: current ? `Now: ${current}. Changing the model marks current scores stale.` : 'Now: the bundled demo model. Changing the model marks current scores stale.',
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!picked) return undefined;

  let model = picked.model;
  let variant: string | undefined;
  if (picked.ask === 'folder') {
    const folders = await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, canSelectMany: false, openLabel: 'Score with this model' });
    model = folders?.[0]?.fsPath;
  } else if (picked.ask === 'endpoint') {
    model = (await vscode.window.showInputBox({
      title: 'Nuggets: serving endpoint',
      prompt: 'OpenAI-compatible endpoint that returns prompt log-probabilities (vLLM). Several: separate them with commas.',
      placeHolder: 'http://localhost:8000/v1',
      value: /^https?:\/\//i.test(current) ? current : '',
      ignoreFocusOut: true,
      validateInput: (text) => (text.split(',').every((e) => /^https?:\/\/[^\s/]+/i.test(e.trim())) ? undefined : 'Give http(s)://host:port/v1 (comma-separated for several).'),
    }))?.trim();
  } else if (picked.ask === 'hub') {
    model = (await vscode.window.showInputBox({
      title: 'Nuggets: hub model',
      prompt: 'A hub repository with tokenizer.json, config.json and an ONNX export (onnx/model.onnx), optionally @revision',
      placeHolder: 'hf:owner/name',
      value: current.startsWith('hf:') ? current : 'hf:',
      ignoreFocusOut: true,
      validateInput: (text) => (/^hf:[A-Za-z0-9][\w.-]*\/[\w.-]+(@.+)?$/.test(text.trim()) ? undefined : 'Give hf:owner/name or hf:owner/name@revision.'),
    }))?.trim();
    if (model) variant = await chooseVariant(model, ['fp32', 'quantized', 'q4'], currentVariant);
    if (model && !variant) return undefined;
  } else if (picked.variants) {
    variant = await chooseVariant(picked.model!, picked.variants, picked.model === current ? currentVariant : undefined);
    if (!variant) return undefined;
  }
  if (model === undefined) return undefined;

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
  } else {
    void vscode.window.showInformationMessage(`Nuggets: scoring with ${shown} (${where} settings).`);
  }
  return model;
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

/** Stores (or, given an empty value, removes) a credential in SecretStorage. */
async function setSecret(ctx: Ctx, key: string, what: string, prompt: string, placeHolder: string): Promise<boolean | undefined> {
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
  await secrets.store(key, value.trim());
  void vscode.window.showInformationMessage(`Nuggets: ${what} stored in the editor's secret storage (not in settings).`);
  return true;
}

export function setHubToken(ctx: Ctx): Promise<boolean | undefined> {
  return setSecret(ctx, SECRET_KEYS.hubToken, 'Hugging Face token',
    'Access token for gated or private hub models (huggingface.co/settings/tokens; read access is enough).', 'hf_…');
}

export function setServingApiKey(ctx: Ctx): Promise<boolean | undefined> {
  return setSecret(ctx, SECRET_KEYS.apiKey, 'serving API key', 'The API key of the serving endpoint (vLLM --api-key).', 'API key');
}
