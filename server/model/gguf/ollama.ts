/**
 * Models Ollama has already pulled: `ollama:NAME[:TAG]` → the GGUF blob of its model layer, found
 * through Ollama's own store (no download and no Ollama process). The store is $OLLAMA_MODELS or
 * ~/.ollama/models:
 *
 *   manifests/<host>/<namespace>/<name>/<tag>    JSON: layers[] with mediaType and digest
 *   blobs/sha256-<hex>                           the layer's bytes (older stores: sha256:<hex>)
 *
 * A bare name is library/<name> on registry.ollama.ai, and the tag defaults to latest, as in Ollama.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { NuggetsError } from '../../io/errors';
import { isPlainName } from '../hub';

export const OLLAMA_PREFIX = 'ollama:';
const DEFAULT_HOST = 'registry.ollama.ai';
const MODEL_LAYER = 'application/vnd.ollama.image.model';

export function isOllamaSpec(model: string): boolean {
  return model.trim().startsWith(OLLAMA_PREFIX);
}

export function ollamaStore(env: NodeJS.ProcessEnv = process.env): string {
  return env['OLLAMA_MODELS'] || join(homedir(), '.ollama', 'models');
}

export interface OllamaModel {
  /** As Ollama shows it: name:tag. */
  name: string;
  blob: string;
  /** The digest the manifest gives the blob (sha256 hex): checked against the bytes when they are imported. */
  sha256: string;
}

/** The GGUF blob of `ollama:NAME[:TAG]`, or a NuggetsError saying what is not there. */
export function resolveOllama(spec: string, store = ollamaStore()): OllamaModel {
  const text = spec.trim().slice(OLLAMA_PREFIX.length);
  const colon = text.lastIndexOf(':');
  const hasTag = colon > text.lastIndexOf('/');
  const path = hasTag ? text.slice(0, colon) : text;
  const tag = hasTag ? text.slice(colon + 1) : 'latest';
  const parts = path.split('/');
  const [host, namespace, name] = parts.length === 3 ? parts : parts.length === 2 ? [DEFAULT_HOST, ...parts] : [DEFAULT_HOST, 'library', parts[0]!];
  if (!name || parts.length > 3 || ![host!, namespace!, name, tag].every(isPlainName)) {
    throw new NuggetsError(`"${spec}" is not an Ollama model name.`, 'Give ollama:NAME or ollama:NAME:TAG as `ollama list` shows it, for example ollama:smollm2:135m.');
  }
  const shown = `${parts.length === 1 ? name : path}:${tag}`;
  const manifest = join(store, 'manifests', host!, namespace!, name, tag);
  if (!existsSync(manifest)) {
    const pulled = listOllamaModels(store);
    throw new NuggetsError(
      `The Ollama model ${shown} is not pulled: no manifest at ${manifest}.`,
      pulled.length > 0 ? `Pulled models: ${pulled.slice(0, 12).join(', ')}${pulled.length > 12 ? ', …' : ''}. Or run \`ollama pull ${shown}\`.` : `Run \`ollama pull ${shown}\` first${existsSync(store) ? '' : ` (no Ollama store at ${store}; set OLLAMA_MODELS if it is elsewhere)`}.`,
    );
  }
  let layers: Array<{ mediaType?: string; digest?: string }>;
  try {
    layers = (JSON.parse(readFileSync(manifest, 'utf8')) as { layers?: Array<{ mediaType?: string; digest?: string }> }).layers ?? [];
  } catch (err) {
    throw new NuggetsError(`The Ollama manifest ${manifest} is not valid JSON: ${(err as Error).message}`, `Pull the model again: \`ollama pull ${shown}\`.`);
  }
  const layer = layers.find((l) => l.mediaType === MODEL_LAYER);
  const digest = /^sha256[:-]([0-9a-f]{64})$/.exec(layer?.digest ?? '');
  if (!layer || !digest) {
    throw new NuggetsError(`The Ollama manifest ${manifest} has no model layer (${MODEL_LAYER}) with a sha256 digest.`, 'It may be an adapter or a model Ollama keeps in another form; choose a model made of one GGUF file.');
  }
  const blob = [`sha256-${digest[1]}`, `sha256:${digest[1]}`].map((f) => join(store, 'blobs', f)).find((f) => existsSync(f));
  if (!blob) throw new NuggetsError(`The Ollama model ${shown} names the blob sha256-${digest[1]!.slice(0, 12)}…, which is not in ${join(store, 'blobs')}.`, `Pull the model again: \`ollama pull ${shown}\`.`);
  return { name: shown, blob, sha256: digest[1]! };
}

/** name:tag of every model in the store (library models by their short name), for messages and the editor's picker. */
export function listOllamaModels(store = ollamaStore()): string[] {
  const root = join(store, 'manifests');
  const found: string[] = [];
  const walk = (dir: string, parts: string[]): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const entry of entries) {
      const path = join(dir, entry);
      if (parts.length === 3) {
        if (statSync(path).isFile()) {
          const [host, namespace, name] = parts;
          const shortName = host === DEFAULT_HOST ? (namespace === 'library' ? name : `${namespace}/${name}`) : parts.join('/');
          found.push(`${shortName}:${entry}`);
        }
      } else if (statSync(path).isDirectory()) walk(path, [...parts, entry]);
    }
  };
  walk(root, []);
  return found.sort();
}
