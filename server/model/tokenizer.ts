/** The model's tokenizer (tokenizer.json through @huggingface/tokenizers), reduced to what scoring needs. */
import { Tokenizer } from '@huggingface/tokenizers';
import { NuggetsError } from '../io/errors';

export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  /** One past the largest token id the tokenizer can produce. */
  readonly vocabularySize: number;

  /** `path`: the tokenizer.json file, named in messages. */
  constructor(tokenizerJson: unknown, tokenizerConfig: Record<string, unknown>, path: string) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson as object, tokenizerConfig);
      // Some parts fail only when they run: encode once now rather than in the middle of a run.
      this.tokenizer.encode('Instruction:\nName a colour.\nResponse:\nBlue', { add_special_tokens: true });
    } catch (err) {
      const kind = (tokenizerJson as { model?: { type?: unknown } } | undefined)?.model?.type;
      throw new NuggetsError(
        `${path} could not be loaded by the tokenizer library (@huggingface/tokenizers${typeof kind === 'string' ? `; model type ${kind}` : ''}): ${(err as Error).message}`,
        'The engine runs tokenizer.json files of the BPE (byte-level or SentencePiece-style), WordPiece and Unigram kinds with the library\'s normalizers and pre-tokenizers. Choose a model whose tokenizer is of these kinds, or score through a serving endpoint, which tokenizes on the server.',
      );
    }
    let maxId = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabularySize = maxId + 1;
  }

  /** Token ids of `text`; with `specialTokens`, the tokenizer's default additions (a BOS, for example). */
  encode(text: string, specialTokens: boolean): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: specialTokens }).ids;
  }

  decode(ids: number[]): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: false });
  }
}
