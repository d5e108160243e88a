/** The status bar item's screen-reader label (extension/status_words.ts): plain words, no icon syntax or Markdown escapes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { statusLabel, type StatusState } from '../../extension/status_words';

test('the status bar reads out plain words: no $(icon), no &nbsp;, no ◆', () => {
  const states: StatusState[] = [
    { kind: 'invalid', problem: 'data.json:3:1: malformed JSON (expected a comma).' },
    { kind: 'running', scored: 12, total: 400, eta: 'about 2 min left', done: 12, todo: 400 },
    { kind: 'idle', scored: 400, total: 400, demo: true, source: ' with demo against 100 anchors' },
    { kind: 'idle', scored: 3, total: 400, demo: false, source: '' },
  ];
  for (const state of states) assert.doesNotMatch(statusLabel(state), /\$\(|&nbsp;|&[a-z]+;|[◆◇]/);
  assert.equal(statusLabel(states[2]!), 'Nuggets: every record is scored, 400 of 400 with demo against 100 anchors. '
    + 'Scored by the bundled demo model, which is for trying the tool, not for curation. Activate for the dashboard.');
  assert.equal(statusLabel(states[3]!), 'Nuggets: 3 of 400 records scored. Activate to score the rest.');
  assert.match(statusLabel(states[1]!), /^Nuggets: scoring, 12 of 400 records scored, about 2 min left;/);
});
