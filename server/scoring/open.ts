/**
 * Turns a model specification into a scoring backend, so that the command line and the editor never
 * need to know which kind of model they score with:
 *   <folder>                       a local model folder (tokenizer.json, config.json, ONNX graph)
 *   hf:<owner>/<name>[@revision]   a hub model, downloaded and verified into the cache, then run locally
 *   http(s)://host:port[/v1][,...] one or more OpenAI-compatible serving endpoints (vLLM) that return
 *                                  prompt log-probabilities; several are used round-robin
 */
import { join } from 'node:path';
import { NuggetsError } from '../errors';
import { assertScoredVariant } from '../model/folder';
import { fetchHubModel, hubSpecText, parseHubSpec, type DownloadProgress } from '../model/hub';
import type { ScoringBackend } from './backend';
import { LocalBackend, type LocalModelSettings } from './local';
import { ServingBackend, type ServingSettings } from './serving';

export interface BackendSettings extends LocalModelSettings, Omit<ServingSettings, 'endpoints' | 'signal'> {
  /** The cache root: hub downloads go to its hub/ folder (the extension passes its global storage). */
  cacheDir?: string;
  /** Hub address; default $HF_ENDPOINT or https://huggingface.co. */
  hubEndpoint?: string;
  /** Hub token; default $HF_TOKEN. The extension passes it from SecretStorage. */
  hubToken?: string;
  /** Use only the hub cache, never the network. */
  offline?: boolean;
  onDownload?: (progress: DownloadProgress) => void;
  /** More serving endpoints besides the ones in the model specification. */
  endpoints?: string[];
  /** Cancels opening: a download, or a serving backend's first requests (model list, tokenizer check). Scoring calls take their own. */
  signal?: AbortSignal;
}

export function isServingSpec(model: string): boolean {
  return /^https?:\/\//i.test(model.trim());
}

export async function openBackend(model: string, settings: BackendSettings = {}): Promise<ScoringBackend> {
  if (isServingSpec(model)) {
    const endpoints = [...model.split(','), ...(settings.endpoints ?? [])].map((e) => e.trim()).filter((e) => e !== '');
    return ServingBackend.open({ ...settings, endpoints, ...(settings.signal ? { signal: settings.signal } : {}) });
  }
  if (settings.endpoints?.length) {
    throw new NuggetsError(`Serving endpoints were given, but the model "${model}" is not a serving endpoint (http://…).`, 'Give the endpoints as the model: --model http://host:8000/v1,http://other:8000/v1.');
  }
  const hub = parseHubSpec(model);
  if (hub) {
    assertScoredVariant(settings.variant ?? 'fp32', hubSpecText(hub));
    const downloaded = await fetchHubModel(hub, {
      ...(settings.cacheDir ? { cacheDir: join(settings.cacheDir, 'hub') } : {}),
      ...(settings.hubEndpoint ? { endpoint: settings.hubEndpoint } : {}),
      ...(settings.hubToken ? { token: settings.hubToken } : {}),
      ...(settings.variant ? { variant: settings.variant } : {}),
      ...(settings.offline !== undefined ? { offline: settings.offline } : {}),
      ...(settings.timeoutMs ? { timeoutMs: settings.timeoutMs } : {}),
      ...(settings.onDownload ? { onProgress: settings.onDownload } : {}),
      ...(settings.signal ? { signal: settings.signal } : {}),
    });
    return LocalBackend.open(downloaded.folder, { ...settings, displayName: hubSpecText(hub) });
  }
  return LocalBackend.open(model, settings);
}
