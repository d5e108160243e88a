/**
 * Turns a model specification into a scoring backend: a local folder today; hub models (hf:owner/name)
 * and serving engines (http(s)://...) plug in here, so the command line and the editor never need to
 * know which kind of model they score with.
 */
import type { ScoringBackend } from './backend';
import { LocalBackend, type LocalModelSettings } from './local';

export type BackendSettings = LocalModelSettings;

export async function openBackend(model: string, settings: BackendSettings = {}): Promise<ScoringBackend> {
  return LocalBackend.open(model, settings);
}
