/**
 * What a document's scores are keyed by under the settings in effect: the model's identity, the
 * document's anchor set, the prompt template and the settings that change a score. A stored score with
 * another key is stale.
 */
import type { AnchorSet } from '../anchors';
import type { ServerSettings, ScoreDatasetResult } from '../protocol';
import { TEMPLATE_ID } from '../scoring/template';
import type { ScoringKey } from '../store';
import type { AnchorsPerDocument } from './anchors-per-document';
import { modelOptions, type DownloadRun, type ModelIdentity } from './model-identity';
import type { ModelOptions } from './worker-messages';

export interface Keyed {
  key: ScoringKey;
  anchors: AnchorSet;
}

export class ScoringKeys {
  constructor(
    readonly model: ModelIdentity,
    readonly anchors: AnchorsPerDocument,
    private readonly settings: () => ServerSettings,
    private readonly storagePath: string,
  ) {}

  /** The document's key now; undefined while the model cannot be used or the document has no anchors. */
  async keyFor(uri: string, download?: DownloadRun): Promise<Keyed | undefined> {
    const settings = this.settings();
    const model = await this.model.of(settings, this.modelOptions(), download);
    const anchors = this.anchors.setFor(uri);
    if (!model || !anchors) return undefined;
    // No scoringPath: the editor never scores on the naive path. Its worker opens models with ModelOptions,
    // which carry no path, so a local model runs LocalBackend's default, the cached path, and a served model
    // has one path only; a key without a path is exactly that (store.ts ScoringKey.scoringPath), the same key
    // as `nuggets score` without --reference. Should the editor ever offer the naive path, it goes here and in
    // score-book.ts keyName.
    return {
      anchors,
      key: {
        model, anchors: { hash: anchors.hash, count: anchors.anchors.length }, template: TEMPLATE_ID,
        maxAnchorTokens: settings.maxAnchorTokens, separator: '',
      },
    };
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
