/**
 * What Nuggets: Choose Model offers besides the suggested hub models: the models Ollama has pulled on this
 * machine, read from Ollama's store without loading (or importing) anything.
 */
import { OLLAMA_PREFIX, listOllamaModels, ollamaStore } from '../model/gguf/ollama';
import type { OllamaModels } from '../protocol';

/** The pulled models as `nuggets.model` values (ollama:NAME:TAG, sorted); none when there is no store. */
export function ollamaModels(store: string = ollamaStore()): OllamaModels {
  return { store, models: listOllamaModels(store).map((name) => `${OLLAMA_PREFIX}${name}`) };
}
