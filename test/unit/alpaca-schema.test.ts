/**
 * The JSON schema contributed for Alpaca files (package.json contributes.jsonValidation), checked with
 * vscode-json-languageservice, the library behind VS Code's own JSON diagnostics.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { getLanguageService, TextDocument, type Diagnostic } from 'vscode-json-languageservice';
import { repoRoot, sharedData } from '../helpers';

const manifest = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  contributes: { jsonValidation: { fileMatch: string[]; url: string }[] };
};
const contribution = manifest.contributes.jsonValidation[0]!;
const schemaUri = 'file:///alpaca.schema.json';
const service = getLanguageService({
  schemaRequestService: async (uri) => {
    if (uri !== schemaUri) throw new Error(`unexpected schema request ${uri}`);
    return readFileSync(join(repoRoot, contribution.url), 'utf8');
  },
});
service.configure({ validate: true, schemas: [{ uri: schemaUri, fileMatch: contribution.fileMatch }] });

async function diagnose(text: string, name = 'data.alpaca.json'): Promise<Diagnostic[]> {
  const document = TextDocument.create(`file:///work/${name}`, 'json', 1, text);
  return service.doValidation(document, service.parseJSONDocument(document));
}

test('the contributed schema exists and applies to Alpaca file names', () => {
  assert.equal(contribution.url, './media/alpaca.schema.json');
  assert.ok(contribution.fileMatch.includes('*.alpaca.json'));
});

test('a real Alpaca file validates without diagnostics', async () => {
  assert.deepEqual(await diagnose(readFileSync(sharedData('gpteacher-toolformer.alpaca.json'), 'utf8')), []);
});

test('malformed records get diagnostics at the record and field at fault', async () => {
  const text = [
    '[',
    '  {"instruction": "Add 2 and 3.", "input": "", "output": "5"},',
    '  {"instruction": "Name a colour.", "input": ""},',
    '  {"instruction": "Double it.", "input": 4, "output": "8"},',
    '  {"instruction": "", "output": "nothing asked"}',
    ']',
  ].join('\n');
  const diagnostics = await diagnose(text);
  const at = (line: number): string[] => diagnostics.filter((d) => d.range.start.line === line).map((d) => d.message);
  assert.deepEqual(at(1), []);
  assert.match(at(2).join(' '), /output/);
  assert.match(at(3).join(' '), /string/i);
  assert.deepEqual(at(4), ['The instruction is empty: state the task.']);
});

test('other JSON files are not checked against it', async () => {
  assert.deepEqual(await diagnose('{"name": "x"}', 'package.json'), []);
});
