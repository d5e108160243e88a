/** The model's tokenizer (tokenizer.json through @huggingface/tokenizers), reduced to what scoring needs. */
import { Tokenizer } from '@huggingface/tokenizers';
import { NuggetsError } from '../errors';

export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  /** One past the largest token id the tokenizer can produce. */
  readonly vocabularySize: number;

  constructor(tokenizerJson: unknown, tokenizerConfig: Record<string, unknown>, where: string) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson as object, tokenizerConfig);
    } catch (err) {
      throw new NuggetsError(`${where}: tokenizer.json could not be loaded: ${(err as Error).message}`);
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
