/**
 * Turns a model specification into a scoring backend, so that the command line and the editor never
 * need to know which kind of model they score with:
 *   <folder>                       a local model folder (tokenizer.json, config.json, ONNX graph)
 *   hf:<owner>/<name>[@revision]   a hub model, downloaded and verified into the cache, then run locally
 *   http(s)://host:port[/v1][,...] one or more OpenAI-compatible serving endpoints (vLLM) that return
 *                                  prompt log-probabilities; several are used round-robin
 */
import type { Example } from '../dataset';
import { NuggetsError } from '../errors';
import { fetchHubModel, hubSpecText, parseHubSpec, type DownloadProgress } from '../model/hub';
import type { ModelIdentity, OneShotResult, PreparedAnchors, ScoringBackend, ScoringOptions } from './backend';
import { LocalBackend, type LocalModelSettings } from './local';
import { ServingBackend, type ServingSettings } from './serving';

export interface BackendSettings extends LocalModelSettings, Omit<ServingSettings, 'endpoints' | 'signal'> {
  /** Hub downloads are kept here (the extension passes its global storage; the CLI ~/.cache/nuggets/hub). */
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
  /** Cancels a download, or a serving backend's requests. */
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
    const downloaded = await fetchHubModel(hub, {
      ...(settings.cacheDir ? { cacheDir: settings.cacheDir } : {}),
      ...(settings.hubEndpoint ? { endpoint: settings.hubEndpoint } : {}),
      ...(settings.hubToken ? { token: settings.hubToken } : {}),
      ...(settings.variant ? { variant: settings.variant } : {}),
      ...(settings.offline !== undefined ? { offline: settings.offline } : {}),
      ...(settings.onDownload ? { onProgress: settings.onDownload } : {}),
      ...(settings.signal ? { signal: settings.signal } : {}),
    });
    const local = await LocalBackend.open(downloaded.folder, settings);
    return new RenamedBackend(local, hubSpecText(hub));
  }
  return LocalBackend.open(model, settings);
}

/** A backend shown under another name (a hub id instead of the cache folder); scores and fingerprint unchanged. */
class RenamedBackend implements ScoringBackend {
  readonly identity: ModelIdentity;
  constructor(private readonly inner: ScoringBackend, name: string) {
    this.identity = { ...inner.identity, name };
  }
  prepareAnchors(anchors: readonly Example[], options: ScoringOptions): Promise<PreparedAnchors> {
    return this.inner.prepareAnchors(anchors, options);
  }
  oneShot(candidate: Example, anchors: PreparedAnchors, anchorIndices?: readonly number[]): Promise<OneShotResult> {
    return this.inner.oneShot(candidate, anchors, anchorIndices);
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}
