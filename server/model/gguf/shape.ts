/**
 * A GGUF model's shape from its metadata (GGUF.md §2): the architectures the importer builds, and a
 * clear refusal for the others, naming the file and what it holds.
 */
import { NuggetsError } from '../../io/errors';
import { metadataNumber, metadataString, type GgufFile } from './file';

export const ARCHITECTURES = ['llama', 'qwen2'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

export interface ModelShape {
  architecture: Architecture;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  contextLength: number;
  eps: number;
  ropeBase: number;
  /** Linear rope scaling: positions are divided by it (1 without scaling). */
  ropeLinearFactor: number;
  tied: boolean;
}

export function modelShape(file: GgufFile): ModelShape {
  const architecture = metadataString(file, 'general.architecture');
  if (architecture === undefined) throw new NuggetsError(`${file.path} has no general.architecture: it is not a model file llama.cpp could run.`);
  if (!(ARCHITECTURES as readonly string[]).includes(architecture)) {
    throw new NuggetsError(
      `${file.path} holds a model of architecture "${architecture}", which the GGUF importer does not build.`,
      `Supported architectures: ${ARCHITECTURES.join(', ')} (SmolLM2, Llama 2 and 3, TinyLlama, Qwen2 and Qwen2.5). For others, use an ONNX export (a model folder or hf:owner/name) or a serving endpoint.`,
    );
  }
  const need = (key: string): number => {
    const v = metadataNumber(file, `${architecture}.${key}`);
    if (v === undefined || !Number.isFinite(v) || v <= 0) throw new NuggetsError(`${file.path} has no valid ${architecture}.${key} in its metadata.`, 'The file may be damaged; fetch it again.');
    return v;
  };
  const hidden = need('embedding_length');
  const heads = need('attention.head_count');
  const kvHeads = metadataNumber(file, `${architecture}.attention.head_count_kv`) ?? heads;
  const headDim = metadataNumber(file, `${architecture}.attention.key_length`) ?? hidden / heads;
  const rotaryDims = metadataNumber(file, `${architecture}.rope.dimension_count`) ?? headDim;
  const embedding = file.tensors.get('token_embd.weight');
  if (!embedding) throw new NuggetsError(`${file.path} has no tensor token_embd.weight, which a ${architecture} model needs.`, 'The file may be damaged; fetch it again.');
  const vocab = embedding.dims[1] ?? 0;
  const tokens = file.metadata.get('tokenizer.ggml.tokens');
  const unsupported = (what: string): NuggetsError => new NuggetsError(`${file.path}: ${what}, which the GGUF importer does not build.`, 'Use an ONNX export of the model or a serving endpoint instead.');
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw unsupported(`its head size ${headDim} is not an even whole number`);
  if (heads % kvHeads !== 0) throw unsupported(`its ${heads} attention heads do not divide into ${kvHeads} key/value heads`);
  if (rotaryDims !== headDim) throw unsupported(`its rotary embedding covers ${rotaryDims} of ${headDim} head dimensions`);
  const valueLength = metadataNumber(file, `${architecture}.attention.value_length`);
  if (valueLength !== undefined && valueLength !== headDim) throw unsupported(`its value heads (${valueLength}) differ in size from its key heads (${headDim})`);
  const scaling = metadataString(file, `${architecture}.rope.scaling.type`);
  let ropeLinearFactor = 1;
  if (scaling === 'linear') ropeLinearFactor = metadataNumber(file, `${architecture}.rope.scaling.factor`) ?? 1;
  else if (scaling !== undefined && scaling !== 'none') throw unsupported(`it uses "${scaling}" rotary scaling`);
  if (Array.isArray(tokens) && tokens.length > vocab) throw new NuggetsError(`${file.path}: its tokenizer has ${tokens.length} tokens but its embedding only ${vocab} rows.`, 'The file may be damaged; fetch it again.');
  return {
    architecture: architecture as Architecture,
    layers: need('block_count'),
    hidden,
    heads,
    kvHeads,
    headDim,
    ffn: need('feed_forward_length'),
    vocab,
    contextLength: need('context_length'),
    eps: metadataNumber(file, `${architecture}.attention.layer_norm_rms_epsilon`) ?? 1e-5,
    ropeBase: metadataNumber(file, `${architecture}.rope.freq_base`) ?? 10000,
    ropeLinearFactor,
    tied: !file.tensors.has('output.weight'),
  };
}

/** The config.json of the imported folder, in Hugging Face's names (what the engine and a reader expect). */
export function configJson(file: GgufFile, shape: ModelShape): Record<string, unknown> {
  const id = (key: string): number | undefined => metadataNumber(file, `tokenizer.ggml.${key}`);
  return {
    architectures: [shape.architecture === 'llama' ? 'LlamaForCausalLM' : 'Qwen2ForCausalLM'],
    model_type: shape.architecture,
    hidden_size: shape.hidden,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.heads,
    num_key_value_heads: shape.kvHeads,
    head_dim: shape.headDim,
    intermediate_size: shape.ffn,
    vocab_size: shape.vocab,
    max_position_embeddings: shape.contextLength,
    rms_norm_eps: shape.eps,
    rope_theta: shape.ropeBase,
    tie_word_embeddings: shape.tied,
    ...(id('bos_token_id') !== undefined ? { bos_token_id: id('bos_token_id') } : {}),
    ...(id('eos_token_id') !== undefined ? { eos_token_id: id('eos_token_id') } : {}),
  };
}
