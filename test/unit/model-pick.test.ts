/**
 * The model pick list that Choose Model and Compare Models share (extension/models.ts pickModel), against the
 * editor stand-in: every kind is offered, a model chosen once is offered again under "Used before"; and the
 * dashboard's words for a comparison (webview/compare.ts): each figure with its meaning, an undefined Spearman
 * named as undefined with its reason, never as 0.000.
 */
import { editor } from '../support/vscode-standin'; // first: the extension modules below require('vscode')
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import type { Ctx } from '../../extension/ctx';
import { chooseModel, modelsUsedBefore, pickModel } from '../../extension/models';
import type { CompareModelsResult } from '../../server/protocol';
import { comparisonFigures, comparisonHeadline } from '../../webview/compare_words';

const ctx = { client: { sendRequest: () => Promise.reject(new Error('no server')) }, extensionContext: { globalState: editor.globalState } } as unknown as Ctx;
const FOLDER = '/home/ada/models/smol-instruct';

interface Item { label: string; kind?: number; model?: string; ask?: string }

beforeEach(() => editor.reset());

test('the pick list offers the demo model, hub models, a folder, a GGUF file and a serving endpoint; a folder chosen in Choose Model comes back under Used before', async () => {
  let listed: Item[] = [];
  editor.answer = (prompt) => {
    if (prompt.kind === 'quickPick') {
      listed = prompt.items as Item[];
      return listed.find((item) => item.ask === 'folder');
    }
    return prompt.kind === 'openDialog' ? [FOLDER] : undefined;
  };
  assert.equal(await chooseModel(ctx), FOLDER);
  assert.deepEqual(listed.filter((i) => i.kind !== -1).map((i) => i.model ?? i.ask), ['', 'hub', 'folder', 'gguf', 'endpoint']);
  assert.equal(listed.some((i) => i.label === 'Used before'), false, 'nothing used before yet');
  assert.deepEqual(modelsUsedBefore(ctx), [{ model: FOLDER }]);

  // The same list, as Compare Models opens it: the folder is offered again, right after the demo model.
  editor.answer = (prompt) => (prompt.kind === 'quickPick' ? (listed = prompt.items as Item[]).find((i) => i.model === FOLDER) : undefined);
  const picked = await pickModel(ctx, { title: 'Nuggets: compare demo with…', placeHolder: '', current: FOLDER, currentVariant: 'fp32' });
  assert.deepEqual(picked, { model: FOLDER });
  assert.deepEqual(listed.slice(0, 3).map((i) => i.label), ['$(beaker) Demo model', 'Used before', '$(folder) smol-instruct (current)']);
});

const comparison: CompareModelsResult = {
  sample: 40, models: ['demo', 'SmolLM2-135M-Instruct'], goldenSpearman: null, goldenSpearmanUndefined: 'demo gave every record of the sample the same golden score: it ranks nothing',
  ifdSpearman: 0.4217, ifdPairs: 38, top10Overlap: 0.25, decisionAgreement: 0.875, threshold: 0.85, kept: [0, 5], standsIn: false,
  verdict: 'demo cannot stand in for SmolLM2-135M-Instruct: …', report: '',
};

test('an undefined Spearman is named as undefined, with why; every figure says what it means', () => {
  const figures = comparisonFigures(comparison);
  assert.deepEqual(figures.map((f) => [f.figure, f.value]), [
    ['Spearman rank correlation, golden score', 'undefined'],
    ['Spearman rank correlation, IFD', '0.422'],
    ['Top-10% overlap', '25%'],
    ['Decisions at golden score ≥ 0.85', '87.5% agree'],
  ]);
  assert.equal(figures[0]!.meaning, 'Undefined: demo gave every record of the sample the same golden score: it ranks nothing.');
  assert.match(figures[3]!.meaning, /The current model keeps 0 of 40, the other 5\./);
  assert.ok(figures.every((f) => !/0\.000/.test(f.value) && f.meaning.length > 20));
  const defined = comparisonFigures({ ...comparison, goldenSpearman: 0.91234, standsIn: true });
  assert.equal(defined[0]!.value, '0.912');
  assert.match(defined[0]!.meaning, /^How alike the two models order the sample by golden score/);
  // The names stay separate parts, for <bdi>.
  assert.deepEqual(comparisonHeadline(comparison).parts.slice(0, 3), [{ name: 'demo' }, ' cannot stand in for ', { name: 'SmolLM2-135M-Instruct' }]);
});
