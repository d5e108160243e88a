/** The editor's serving key binding (extension/serving_key.ts): which origins a stored key may go to, and which need asking. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { originOf, originsToAsk, parseServingKey } from '../../extension/serving_key';

test('a stored serving key reads back with the origins it is bound to; a bare key from before is bound to none', () => {
  assert.deepEqual(parseServingKey(JSON.stringify({ key: 'sk-1', origins: ['http://gpu-a:8000'] })), { key: 'sk-1', origins: ['http://gpu-a:8000'] });
  assert.deepEqual(parseServingKey('sk-bare'), { key: 'sk-bare', origins: [] });
  assert.deepEqual(parseServingKey('{"not":"a key"}'), { key: '{"not":"a key"}', origins: [] });
  assert.equal(parseServingKey(undefined), undefined);
  assert.equal(parseServingKey(''), undefined);
});

test('endpoint addresses become origins: scheme, host and port, nothing of the path', () => {
  assert.equal(originOf('http://gpu-a:8000/v1'), 'http://gpu-a:8000');
  assert.equal(originOf(' https://serve.example.com/v1/ '), 'https://serve.example.com');
  assert.equal(originOf('HTTP://GPU-A:8000'), 'http://gpu-a:8000');
  assert.equal(originOf('file:///etc/passwd'), undefined);
  assert.equal(originOf('gpu-a:8000'), undefined);
  // An SGLang model is its server's http(s) address.
  assert.equal(originOf('sglang+http://gpu-a:30000'), 'http://gpu-a:30000');
  assert.equal(originOf('SGLang+https://serve.example.com/v1'), 'https://serve.example.com');
  assert.equal(originOf('sglang+file:///etc/passwd'), undefined);
});

test('the key goes to its own origin without asking; any other origin is asked about once', () => {
  const key = { key: 'sk-1', origins: ['http://gpu-a:8000'] };
  assert.deepEqual(originsToAsk(key, ['http://gpu-a:8000'], new Set()), []);
  assert.deepEqual(originsToAsk(key, ['http://gpu-a:8000', 'http://attacker:80', 'http://attacker:80'], new Set()), ['http://attacker:80']);
  assert.deepEqual(originsToAsk(key, ['http://attacker:80'], new Set(['http://attacker:80'])), [], 'declined: not asked again');
  // Another port is another origin.
  assert.deepEqual(originsToAsk(key, ['http://gpu-a:8001'], new Set()), ['http://gpu-a:8001']);
  assert.deepEqual(originsToAsk({ key: 'sk-bare', origins: [] }, ['http://gpu-a:8000'], new Set()), ['http://gpu-a:8000']);
});
