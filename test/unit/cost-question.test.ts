/**
 * The question before a long run in the extension (extension/cost_question.ts), against a stand-in of the editor
 * (test/support/vscode-standin.ts): a modal when the server asks, the button's way sent back, Cancel when dismissed,
 * no question when the server does not ask, and the int8 variant applied as a workspace setting.
 */
import { editor } from '../support/vscode-standin'; // first: the extension modules below require('vscode')
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { applyFasterWay, registerCostQuestion } from '../../extension/cost_question';
import type { Ctx } from '../../extension/ctx';
import type * as protocol from '../../server/protocol';

const estimate: protocol.CostEstimateInfo = {
  uri: 'file:///home/ada/data%20set.json', records: 397, probed: 3, anchors: 100, fullSeconds: 18_480,
  earlyStop: { threshold: 0.85, seconds: 3_720, passesPerRecord: 19.5 }, fasterWays: ['int8', 'fewerAnchors', 'endpoint'], ask: true,
};

/** The handler the extension registers for costEstimateRequest, and the lines it logged. */
function handler(): { answer: (e: protocol.CostEstimateInfo) => Promise<protocol.CostEstimateAnswer>; logged: string[] } {
  let registered: ((e: protocol.CostEstimateInfo) => Promise<protocol.CostEstimateAnswer>) | undefined;
  const logged: string[] = [];
  const ctx = {
    client: { onRequest: (_type: unknown, h: typeof registered) => ((registered = h), { dispose: () => undefined }) },
    log: { info: (line: string) => logged.push(line) },
  } as unknown as Ctx;
  registerCostQuestion(ctx);
  return { answer: (e) => registered!(e), logged };
}

beforeEach(() => editor.reset());

test('a run that asks gets a modal with the estimate, and the button chosen is the answer', async () => {
  const { answer, logged } = handler();
  editor.answer = (prompt) => (prompt.items as Array<{ title: string }>).find((b) => b.title === 'Use the int8 Variant');
  assert.deepEqual(await answer(estimate), { choice: 'int8' });
  const [prompt] = editor.prompts;
  assert.equal(prompt!.kind, 'warning');
  assert.equal(prompt!.options!['modal'], true);
  assert.equal(prompt!.message, 'Nuggets: scoring the other 397 records of data set.json will take about 5h 08m.');
  assert.match(String(prompt!.options!['detail']), /exact early stop at 0\.85 it would take about 1h 02m/);
  assert.deepEqual((prompt!.items as Array<{ title: string }>).map((b) => b.title), ['Go On', 'Use the int8 Variant', 'Choose Fewer Anchors', 'Use a Serving Endpoint']);
  assert.match(logged[0]!, /^\[run\] data set\.json: scoring the other 397 records/);
});

test('dismissing the modal cancels; a run that does not ask goes on without a question', async () => {
  const { answer } = handler();
  assert.deepEqual(await answer(estimate), { choice: 'cancel' });
  editor.prompts.length = 0;
  assert.deepEqual(await answer({ ...estimate, ask: false }), { choice: 'continue' });
  assert.equal(editor.prompts.length, 0);
});

test('the int8 variant is applied as the workspace\'s nuggets.modelVariant', async () => {
  await applyFasterWay('int8');
  assert.deepEqual(editor.updates, [{ name: 'nuggets.modelVariant', value: 'quantized', target: 2 }]);
});
