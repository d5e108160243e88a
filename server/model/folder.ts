/**
 * A model folder on disk: tokenizer.json (+ tokenizer_config.json), config.json, and the ONNX graph
 * as model.onnx or onnx/model*.onnx (the layout of Hugging Face repositories exported with Optimum
 * or for transformers.js). Finds the files, reads the configs, and fingerprints the contents so that
 * scores computed with one model are never mixed with another's.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { NuggetsError } from '../io/errors';
import { hashFile } from '../io/files';
import { ggufImportKey } from './gguf/import';
import { externalDataFiles } from './logprob-head';

export interface ModelFolder {
  path: string;
  name: string;
  onnxPath: string;
  tokenizerJson: unknown;
  tokenizerConfig: Record<string, unknown>;
  config: Record<string, unknown>;
  /** Content hash of the graph and tokenizer: part of every score's key. */
  fingerprint: string;
}

/** Which ONNX file to prefer when a folder holds several (onnx/model.onnx, onnx/model_quantized.onnx, ...). */
export type OnnxVariant = 'fp32' | 'quantized' | 'int8' | 'fp16' | 'q4' | string;

/** Exports the engine does not score (float16 key/values and logits), refused by name before any download. */
export const FLOAT16_VARIANTS: readonly string[] = ['fp16', 'q4f16'];

/** Why, and what to choose instead: one text for the command line and the editor (the README and the picker say the same). */
export const FP16_NOT_SCORED = 'fp16 exports (model_fp16.onnx, model_q4f16.onnx) are not scored: their key/values and logits are float16, which this engine does not read, and ONNX Runtime runs float16 slower than float32 on a CPU. Choose q4 (the smallest) or fp32 (the reference scores) instead; quantized (int8) runs too.';

/** Refuses, before anything is read or downloaded, a variant whose exports are float16. */
export function assertScoredVariant(variant: OnnxVariant, model: string): void {
  if (FLOAT16_VARIANTS.includes(variant)) throw new NuggetsError(`The ${variant} variant of ${model} is not scored.`, FP16_NOT_SCORED);
}

export function readModelFolder(folder: string, variant: OnnxVariant = 'fp32'): ModelFolder {
  const path = resolve(folder);
  assertScoredVariant(variant, path);
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new NuggetsError(`Model folder not found: ${path}`, 'Pass --model <folder> with tokenizer.json, config.json and model.onnx (or onnx/model.onnx).');
  }
  const onnxPath = findOnnx(path, variant);
  const tokenizerPath = join(path, 'tokenizer.json');
  const tokenizerJson = readJson(tokenizerPath, true);
  const tokenizerConfig = (readJson(join(path, 'tokenizer_config.json'), false) ?? {}) as Record<string, unknown>;
  const config = readJson(join(path, 'config.json'), true) as Record<string, unknown>;
  const fingerprint = createHash('sha256').update(graphHash(onnxPath));
  const imported = ggufImportKey(path);
  // External weights are part of the model: two exports of one graph with other weights are other models.
  // A GGUF import's weights are written from the GGUF file alone: its content hash stands for them, so a
  // second open reads no weights before the session is created.
  if (imported !== undefined) fingerprint.update(imported);
  else for (const weights of externalDataFiles(onnxPath)) fingerprint.update(graphHash(weights));
  fingerprint.update(readFileSync(tokenizerPath));
  return { path, name: basename(path), onnxPath, tokenizerJson, tokenizerConfig, config, fingerprint: fingerprint.digest('hex').slice(0, 16) };
}

/**
 * SHA-256 of a graph (or external weights) file, computed once per process for a given path, size and
 * modification time: a multi-gigabyte graph is read once, not again each time the same model is
 * identified and opened.
 */
const graphHashes = new Map<string, Buffer>();
function graphHash(onnxPath: string): Buffer {
  const { size, mtimeMs } = statSync(onnxPath);
  const key = `${onnxPath}\u0000${size}\u0000${mtimeMs}`;
  let digest = graphHashes.get(key);
  if (!digest) {
    digest = hashFile(createHash('sha256'), onnxPath).digest();
    graphHashes.set(key, digest);
  }
  return digest;
}

function findOnnx(folder: string, variant: OnnxVariant): string {
  const suffix = variant === 'fp32' ? '' : `_${variant}`;
  const candidates = [join(folder, `model${suffix}.onnx`), join(folder, 'onnx', `model${suffix}.onnx`)];
  for (const c of candidates) {
    if (!existsSync(c)) continue;
    if (statSync(c).isDirectory()) throw new NuggetsError(`${c} is a folder, not an ONNX graph.`, 'Put the exported model.onnx file there (a folder of the same name is not read).');
    return c;
  }
  const onnxDir = join(folder, 'onnx');
  const present = [
    ...readdirSync(folder).filter((f) => f.endsWith('.onnx')),
    ...(existsSync(onnxDir) ? readdirSync(onnxDir).filter((f) => f.endsWith('.onnx')).map((f) => `onnx/${f}`) : []),
  ];
  throw new NuggetsError(
    `No ONNX graph for variant "${variant}" in ${folder} (looked for ${candidates.map((c) => c.slice(folder.length + 1)).join(', ')}).`,
    present.length > 0 ? `Found: ${present.join(', ')}. Choose one with the model variant setting.` : 'The folder holds no .onnx file.',
  );
}

function readJson(path: string, required: boolean): unknown {
  if (!existsSync(path)) {
    if (!required) return undefined;
    throw new NuggetsError(`Model folder is missing ${basename(path)}: ${path}`);
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new NuggetsError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}


/** The context length a config declares, under the names different architectures use. */
export function contextLengthOf(config: Record<string, unknown>): number | undefined {
  for (const key of ['n_positions', 'max_position_embeddings', 'n_ctx', 'max_sequence_length', 'seq_length']) {
    const v = config[key];
    if (typeof v === 'number' && v > 0) return v;
  }
  return undefined;
}
