/**
 * Which chat template a run scores with, for any backend (ALGORITHM.md, "Conversations and chat templates"):
 * `--template chat` is the model's own, read from the model's folder for a local model, and for a served model from
 * the folder of the tokenizer named with --tokenizer (its tokenizer_config.json or chat_template.jinja), since a
 * server does not say its template; `chatml` and FILE.jinja need neither. The records a template cannot render are
 * found here too, before any pass, for `score` and `agree` alike.
 */
import type { Example, RejectedRecord } from '../records/dataset';
import { NuggetsError } from '../io/errors';
import type { ScoringBackend } from './backend';
import { turnsOf } from './chat-render';
import { cannotRender, resolveChatTemplate, type ChatTemplate } from './chat-template';
import { LocalBackend } from './local';
import { ServingBackend } from './serving';

/** The template `name` (chat, chatml or a .jinja file) for scoring with `backend`. */
export function chatTemplateFor(name: string, backend: ScoringBackend): ChatTemplate {
  if (backend instanceof LocalBackend) return resolveChatTemplate(name, backend.folder, backend.tokenizerConfig);
  const files = backend instanceof ServingBackend ? backend.tokenizerFiles : undefined;
  if (files) return resolveChatTemplate(name, files.folder, files.config);
  if (name === 'chat') {
    throw new NuggetsError(
      `The served model's own chat template is not known here: ${backend.identity.name} does not say it, and no --tokenizer folder was given to read it from.`,
      'Add --tokenizer <the served model\'s folder> (or hf:owner/name: its tokenizer_config.json or chat_template.jinja holds the template), or name one: --template chatml or --template FILE.jinja.',
    );
  }
  return resolveChatTemplate(name, '', {});
}

/**
 * The records a chat template cannot render (it raises on a system role, say): each named, then left out, as
 * records that cannot be scored are. Checked on the record alone, before any pass.
 */
export function unrenderable(records: readonly (Example & { index: number })[], template: ChatTemplate, where: (index: number) => string): { kept: Set<number>; rejected: RejectedRecord[] } {
  const rejected: RejectedRecord[] = [];
  const kept = new Set<number>();
  for (const record of records) {
    const why = cannotRender(turnsOf(record), template);
    if (why === undefined) kept.add(record.index);
    else rejected.push({ where: where(record.index), position: record.index, why });
  }
  return { kept, rejected };
}

/** The template a run uses when --template is not given: paper for Alpaca records, the model's own for conversations. */
export function templateNameFor(flag: string | undefined, conversations: boolean): string {
  return flag ?? (conversations ? 'chat' : 'paper');
}
