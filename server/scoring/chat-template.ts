/**
 * Chat templates (ALGORITHM.md, "Conversations and chat templates"): the model's own Jinja template
 * (tokenizer_config.json's chat_template, or chat_template.jinja beside it), a template file the user
 * names, or the built-in ChatML one, rendered with @huggingface/jinja as transformers' apply_chat_template
 * renders it. strftime_now is pinned, so that a template that writes today's date (Llama 3's does) gives
 * the same scores on any day.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import type { Turn } from '../records/dataset';
import { NuggetsError } from '../io/errors';

/** The built-in template (ALGORITHM.md): each turn "<|im_start|>role\ncontent<|im_end|>\n", no default system turn. */
export const CHATML_TEMPLATE = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
  + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The day strftime_now answers with: 26 July 2024 (the date Llama 3.1's template was published with), any day the scores are made. */
export const PINNED_NOW = new Date(Date.UTC(2024, 6, 26, 0, 0, 0));

export class ChatTemplate {
  private readonly program: Template['parsed'];

  /**
   * `key`: what the scores header records, so that scores made under other templates are never mixed:
   * 'chatml' for the built-in template, 'chat:' + a hash of the text for any other.
   * `source`: where the text came from, for messages.
   * `specialTokens`: bos_token, eos_token, unk_token and pad_token as tokenizer_config.json names them.
   */
  constructor(readonly text: string, readonly source: string, readonly key: string, readonly specialTokens: Record<string, string>) {
    try {
      this.program = new Template(text).parsed;
    } catch (err) {
      throw new NuggetsError(`The chat template from ${source} could not be parsed: ${(err as Error).message}`, 'Fix the template, or name another with --template (chatml, or a .jinja file).');
    }
  }

  /** render(turns, gen): the template applied to the turns, with the generation prompt when `generationPrompt`. Throws what the template raises. */
  render(turns: readonly Turn[], generationPrompt: boolean): string {
    const env = new Environment();
    env.set('false', false);
    env.set('true', true);
    env.set('none', null);
    env.set('False', false);
    env.set('True', true);
    env.set('None', null);
    env.set('raise_exception', (message: unknown) => {
      throw new TemplateRaised(String(message));
    });
    env.set('range', range);
    env.set('strftime_now', (format: unknown) => strftime(String(format), PINNED_NOW));
    for (const [name, value] of Object.entries(this.specialTokens)) env.set(name, value);
    env.set('messages', turns.map((t) => ({ role: t.role, content: t.content })));
    env.set('add_generation_prompt', generationPrompt);
    return (new Interpreter(env).run(this.program) as { value: string }).value;
  }
}

/**
 * Why `template` cannot render a record (it raises on a system role, say), or undefined when it renders the
 * record's turns and its context with the generation prompt: checked on the record alone, before any pass.
 * The command line leaves such records out; the editor marks them.
 */
export function cannotRender(turns: readonly Turn[], template: ChatTemplate): string | undefined {
  try {
    template.render(turns, false);
    template.render(turns.slice(0, -1), true);
    return undefined;
  } catch (err) {
    return `the chat template (${template.source}) cannot render it: ${(err as Error).message}`;
  }
}

/** A model without a chat template asked to score conversations with its own ('chat'). */
export class NoChatTemplateError extends NuggetsError {}

/** What a template raised with raise_exception (a role it does not accept, roles that do not alternate). */
export class TemplateRaised extends Error {}

export function chatmlTemplate(specialTokens: Record<string, string> = {}): ChatTemplate {
  return new ChatTemplate(CHATML_TEMPLATE, 'the built-in chatml template', 'chatml', specialTokens);
}

export function templateKey(text: string): string {
  return `chat:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

/** The special tokens a template may write, as strings (tokenizer_config.json holds strings or {content} objects). */
export function specialTokensOf(tokenizerConfig: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    const v = tokenizerConfig[name];
    const text = typeof v === 'string' ? v : typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;
    if (text !== undefined) out[name] = text;
  }
  return out;
}

/** The model's own template: chat_template.jinja in its folder, else tokenizer_config.json's chat_template (a string, or a list whose "default" entry is used). */
export function modelChatTemplate(folder: string, tokenizerConfig: Record<string, unknown>): ChatTemplate | undefined {
  const special = specialTokensOf(tokenizerConfig);
  const file = join(folder, 'chat_template.jinja');
  if (existsSync(file)) {
    const text = readFileSync(file, 'utf8');
    return new ChatTemplate(text, file, templateKey(text), special);
  }
  let text: unknown = tokenizerConfig['chat_template'];
  if (Array.isArray(text)) text = (text.find((t: { name?: unknown }) => t?.name === 'default') as { template?: unknown } | undefined)?.template;
  if (typeof text !== 'string' || text === '') return undefined;
  return new ChatTemplate(text, join(folder, 'tokenizer_config.json'), templateKey(text), special);
}

/**
 * The template `--template` names for a local model: 'chat' (the model's own), 'chatml', or a .jinja file.
 * A model without a template cannot score conversations unless one is named.
 */
export function resolveChatTemplate(name: string, folder: string, tokenizerConfig: Record<string, unknown>): ChatTemplate {
  const special = specialTokensOf(tokenizerConfig);
  if (name === 'chatml') return chatmlTemplate(special);
  if (name === 'chat') {
    const own = modelChatTemplate(folder, tokenizerConfig);
    if (!own) {
      throw new NoChatTemplateError(
        `The model ${basename(folder)} has no chat template (no chat_template in its tokenizer_config.json, no chat_template.jinja), so it cannot score conversations with its own.`,
        'Name one: --template chatml (the built-in ChatML template) or --template FILE.jinja.',
      );
    }
    return own;
  }
  let text: string;
  try {
    text = readFileSync(name, 'utf8');
  } catch {
    throw new NuggetsError(`--template ${name}: no such template file.`, 'Give paper, chat, chatml, or the path of a .jinja file.');
  }
  return new ChatTemplate(text, name, templateKey(text), special);
}

function range(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() step must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** Python's strftime for the directives chat templates use, in UTC. */
export function strftime(format: string, date: Date): string {
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  return format.replace(/%([a-zA-Z%])/g, (whole, d: string) => {
    switch (d) {
      case 'd': return pad(date.getUTCDate());
      case 'e': return String(date.getUTCDate()).padStart(2, ' ');
      case 'm': return pad(date.getUTCMonth() + 1);
      case 'Y': return String(date.getUTCFullYear());
      case 'y': return pad(date.getUTCFullYear() % 100);
      case 'b': return MONTHS[date.getUTCMonth()]!.slice(0, 3);
      case 'B': return MONTHS[date.getUTCMonth()]!;
      case 'a': return DAYS[date.getUTCDay()]!.slice(0, 3);
      case 'A': return DAYS[date.getUTCDay()]!;
      case 'H': return pad(date.getUTCHours());
      case 'M': return pad(date.getUTCMinutes());
      case 'S': return pad(date.getUTCSeconds());
      case 'j': return pad(Math.floor((date.getTime() - Date.UTC(date.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3);
      case '%': return '%';
      default: return whole;
    }
  });
}
