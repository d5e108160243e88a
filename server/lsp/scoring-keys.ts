/**
 * What a document's scores are keyed by under the settings in effect: the model's identity, the
 * document's anchor set, the prompt template and the settings that change a score. A stored score with
 * another key is stale.
 *
 * The template is chosen as `nuggets score --template` chooses it (`nuggets.template`; auto: the paper's for
 * Alpaca records, the model's own chat template when the document or its anchors hold conversations), and
 * keyed as the command line writes it in the scores header (the chat template's key: 'chatml', or 'chat:' and
 * a hash of its text), so that the command line and the editor share the scores of one dataset, model, anchor
 * set and template. `nuggets.turns` is keyed as `nuggets score --turns` writes it too.
 */
import type { AnchorSet } from '../records/anchors';
import { RECORD_FORMATS, type RecordFormat } from '../records/dataset';
import type { ServerSettings, ScoreDatasetResult } from '../protocol';
import type { ChatTemplate } from '../scoring/chat-template';
import { TEMPLATE_ID } from '../scoring/template';
import type { ScoringKey } from '../records/store';
import type { AnchorsPerDocument } from './anchors-per-document';
import { modelOptions, mtimeOf, type DownloadRun, type ModelIdentity } from './model-identity';
import type { ModelOptions } from './worker-messages';
import type { ScoringWorker } from './worker';

export interface Keyed {
  key: ScoringKey;
  anchors: AnchorSet;
  /** The chat template the records are scored through, as the worker resolved it; absent: the paper's template. */
  chatTemplate?: ChatTemplate;
  /** The template as `nuggets score --template` names it ('chat', 'chatml', a .jinja path); absent: the paper's. */
  templateName?: string;
}

/** Why a document cannot be scored under the template in effect (shown for Score Dataset); `noChatTemplate` when the model has none of its own. */
export interface TemplateRefusal {
  message: string;
  noChatTemplate: boolean;
}

export class ScoringKeys {
  /** Whether the open document holds conversations (documents.ts sets it: the keys know no documents). */
  conversationsIn: (uri: string) => boolean = () => false;
  /** Told each key found (documents.ts marks the records its chat template cannot render). */
  onKeyed: (uri: string, keyed: Keyed) => void = () => undefined;
  /** Resolved chat templates, by what they depend on (model, template name, file times). */
  private templates: { stamp: string; result: Promise<ChatTemplate | { noChatTemplate: string }> } | undefined;
  /** Why each document has no key under the template in effect, when that is why. */
  private readonly refusals = new Map<string, TemplateRefusal>();

  constructor(
    readonly model: ModelIdentity,
    readonly anchors: AnchorsPerDocument,
    private readonly settings: () => ServerSettings,
    private readonly storagePath: string,
    private readonly worker: ScoringWorker,
  ) {}

  /** The record format setting (`nuggets.format`): undefined for auto, each file's first record deciding. */
  recordFormat(): RecordFormat | undefined {
    const format = this.settings().format;
    return format && (RECORD_FORMATS as readonly string[]).includes(format) ? (format as RecordFormat) : undefined;
  }

  /** Why the document has no key under the template in effect (a model without a chat template), if that is why. */
  templateRefusal(uri: string): TemplateRefusal | undefined {
    return this.refusals.get(uri);
  }

  /** The document's key now; undefined while the model cannot be used, the document has no anchors, or the template cannot be had. */
  async keyFor(uri: string, download?: DownloadRun): Promise<Keyed | undefined> {
    const settings = this.settings();
    const model = await this.model.of(settings, this.modelOptions(), download);
    const anchors = this.anchors.setFor(uri);
    if (!model || !anchors) return undefined;
    const templated = await this.templateOf(uri, settings, anchors);
    if ('refusal' in templated) {
      this.refusals.set(uri, templated.refusal);
      return undefined;
    }
    this.refusals.delete(uri);
    // No scoringPath: the editor never scores on the naive path. Its worker opens models with ModelOptions,
    // which carry no path, so a local model runs LocalBackend's default, the cached path, and a served model
    // has one path only; a key without a path is exactly that (store.ts ScoringKey.scoringPath), the same key
    // as `nuggets score` without --reference. Should the editor ever offer the naive path, it goes here and in
    // score-book.ts keyName.
    const chatTemplate = templated.chatTemplate;
    const keyed: Keyed = {
      anchors,
      ...(chatTemplate ? { chatTemplate, templateName: templated.name } : {}),
      key: {
        model, anchors: { hash: anchors.hash, count: anchors.anchors.length }, template: chatTemplate?.key ?? TEMPLATE_ID,
        maxAnchorTokens: settings.maxAnchorTokens, separator: '',
        // As the command line writes it (--turns): only when not the default, so that keys from before read as they were.
        ...(settings.turns === 'all' ? { turns: 'all' as const } : {}),
      },
    };
    this.onKeyed(uri, keyed);
    return keyed;
  }

  /**
   * The template the document is scored with: as `nuggets score` chooses it (auto: 'chat' when the document or its
   * anchors hold conversations, else the paper's), resolved by the worker with the command line's code. The paper's
   * template asked for conversations, or a model without a chat template of its own, is a refusal.
   */
  private async templateOf(uri: string, settings: ServerSettings, anchors: AnchorSet): Promise<{ chatTemplate?: ChatTemplate; name?: string } | { refusal: TemplateRefusal }> {
    const conversations = this.conversationsIn(uri) || anchors.anchors.some((a) => a.turns);
    const setting = (settings.template ?? '').trim();
    const name = setting === '' || setting === 'auto' ? (conversations ? 'chat' : 'paper') : setting;
    if (name === 'paper') {
      if (!conversations) return {};
      return { refusal: { noChatTemplate: false, message: 'The dataset (or its anchors) holds conversations, which the paper\'s Alpaca template cannot score. Set nuggets.template to auto, chat (the model\'s own), chatml, or a .jinja file.' } };
    }
    const stamp = JSON.stringify([settings.model, settings.variant ?? null, name, mtimeOf(name), mtimeOf(`${settings.model}/tokenizer_config.json`), mtimeOf(`${settings.model}/chat_template.jinja`)]);
    if (this.templates?.stamp !== stamp) this.templates = { stamp, result: this.worker.chatTemplate(settings.model, this.modelOptions(), name) };
    let resolved: ChatTemplate | { noChatTemplate: string };
    try {
      resolved = await this.templates.result;
    } catch (err) {
      if (this.templates?.stamp === stamp) this.templates = undefined; // asked again next time (a template file being written)
      // The command line's words for its option name the setting here.
      return { refusal: { noChatTemplate: false, message: (err as Error).message.replace(/^--template /, 'nuggets.template: ') } };
    }
    if ('noChatTemplate' in resolved) return { refusal: { noChatTemplate: true, message: resolved.noChatTemplate } };
    return { chatTemplate: resolved, name };
  }

  /** How the scoring worker opens the model under the settings in effect. */
  modelOptions(): ModelOptions {
    return modelOptions(this.settings(), this.storagePath);
  }

  /** What a document's scores are computed with, beyond the model's name: for hovers and the dashboard header. */
  sourceOf(uri: string): { anchors: string | null; demoModel: boolean } {
    return { anchors: this.anchors.describe(uri), demoModel: this.settings().demoModel === true };
  }

  /** The model and anchors a run scores with, for the client's run log. */
  runFacts(uri: string, keyed: Keyed): Pick<ScoreDatasetResult, 'model' | 'anchors'> {
    const { name, fingerprint } = keyed.key.model;
    const { anchors, demo } = this.scoredWith(uri, keyed);
    return { model: { name, fingerprint, demo }, anchors: { description: anchors, count: keyed.anchors.anchors.length, hash: keyed.anchors.hash } };
  }

  /** How the document's current scores are computed, named for people: model, anchor set, whether it is the demo model. */
  scoredWith(uri: string, keyed: Keyed): { model: string; anchors: string; demo: boolean } {
    return { model: keyed.key.model.name, anchors: this.anchors.describe(uri) ?? keyed.anchors.hash, demo: this.settings().demoModel === true };
  }
}
