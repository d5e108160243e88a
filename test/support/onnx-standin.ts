/**
 * What the serving stand-ins (vllm-server.ts, sglang-server.ts) share: a model folder read with plain
 * onnxruntime-node and @huggingface/tokenizers, every prompt one whole sequence through the graph with an empty
 * past and its logits log-softmaxed here in float64, and the HTTP helpers. Nothing here (nor in the stand-ins)
 * comes from server/: a bug in the engine's batching, caching or tokenization cannot hide on both sides.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

/** A model folder as the stand-ins read it: config.json, tokenizer.json (+ tokenizer_config.json), model.onnx or onnx/model.onnx. */
export interface StandinFolder {
  config: Record<string, unknown>;
  tokenizer: Tokenizer;
  /** The config's context length (the first of the keys Hugging Face configs use for it). */
  contextLength: number;
  onnxPath: string;
}

export function readStandinFolder(modelFolder: string): StandinFolder {
  const config = JSON.parse(readFileSync(join(modelFolder, 'config.json'), 'utf8')) as Record<string, unknown>;
  const configPath = join(modelFolder, 'tokenizer_config.json');
  const tokenizerConfig = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown> : {};
  const tokenizer = new Tokenizer(JSON.parse(readFileSync(join(modelFolder, 'tokenizer.json'), 'utf8')) as object, tokenizerConfig);
  const key = ['n_positions', 'max_position_embeddings', 'n_ctx', 'max_sequence_length', 'seq_length'].find((k) => typeof config[k] === 'number' && (config[k] as number) > 0);
  if (key === undefined) throw new Error(`${modelFolder}/config.json gives no context length.`);
  const onnxPath = [join(modelFolder, 'model.onnx'), join(modelFolder, 'onnx', 'model.onnx')].find((p) => existsSync(p));
  if (onnxPath === undefined) throw new Error(`${modelFolder} has no model.onnx (nor onnx/model.onnx).`);
  return { config, tokenizer, contextLength: config[key] as number, onnxPath };
}

/** The graph with an empty past: one whole sequence per pass, log-softmax over its logits here, in float64. */
export class OnnxModel {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly pasts: { name: string; dims: number[] }[],
    readonly vocabularySize: number,
  ) {}

  static async load(path: string): Promise<OnnxModel> {
    const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
    const pasts = session.inputMetadata.filter((m) => m.name.startsWith('past_key_values.')).map((m) => {
      const shape = (m as { shape: readonly (number | string)[] }).shape;
      return { name: m.name, dims: [1, Number(shape[1]), 0, Number(shape[3])] };
    });
    const logits = session.outputMetadata.find((m) => m.name === 'logits') as { shape: readonly (number | string)[] } | undefined;
    let vocabularySize = Number(logits?.shape[2]);
    if (!Number.isInteger(vocabularySize)) {
      const probe = await OnnxModel.run(session, pasts, [0]);
      vocabularySize = probe.dims[2]!;
    }
    return new OnnxModel(session, pasts, vocabularySize);
  }

  /** log p(ids[t] | ids[< t]) for t = start + 1 … L - 1. */
  async logprobs(ids: number[], start: number): Promise<Float64Array> {
    const logits = await OnnxModel.run(this.session, this.pasts, ids);
    const vocab = logits.dims[2]!;
    const data = logits.data as Float32Array;
    const out = new Float64Array(ids.length - 1 - start);
    for (let t = start + 1; t < ids.length; t++) {
      const row = (t - 1) * vocab;
      let max = -Infinity;
      for (let v = 0; v < vocab; v++) max = Math.max(max, data[row + v]!);
      let total = 0;
      for (let v = 0; v < vocab; v++) total += Math.exp(data[row + v]! - max);
      out[t - start - 1] = data[row + ids[t]!]! - max - Math.log(total);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private static async run(session: ort.InferenceSession, pasts: { name: string; dims: number[] }[], ids: number[]): Promise<ort.Tensor> {
    const n = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
    };
    if (session.inputNames.includes('attention_mask')) feeds['attention_mask'] = new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]);
    if (session.inputNames.includes('position_ids')) feeds['position_ids'] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [1, n]);
    for (const past of pasts) feeds[past.name] = new ort.Tensor('float32', new Float32Array(0), past.dims);
    const out = await session.run(feeds, ['logits']);
    return out['logits']!;
  }
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
