// `npm run mutants`: breaks, one at a time, each guard that protects users (workspace trust, the serving
// key's binding, escaping, the lock, atomic writes, checksums, cancellation, the scores key, the self-anchor
// rule) and checks that a test notices. Each mutant is a literal search/replace in one source file; its
// search text must occur there exactly once, or the run fails before anything is built (so that the list
// follows the code). For each mutant the checkout's files (tracked and untracked, not ignored) are copied
// into a temporary folder beside links to node_modules, .cache and ../shared, the mutation applied, the
// bundles and tests built there, and only the mutant's test files run, in order, until one fails. A mutant
// whose tests all pass survived: the run exits 1. First the same tests run on the unmutated copy: a test
// that fails there would kill every mutant and prove nothing.
//
//   node tools/mutants.mjs            every mutant
//   node tools/mutants.mjs lock       only those whose name contains "lock"
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * Test files are named as built (out/test/<name>.test.js); `match` runs only the tests whose names it
 * matches (node --test-name-pattern), for files whose other tests are slow or need what a copy lacks.
 */
const trust = { file: 'unit/extension-trust' };
const MUTANTS = [
  // Workspace trust (extension/config.ts): an untrusted workspace's settings are ignored and it gets no credential.
  { name: 'trust: an untrusted workspace is sent the credentials', file: 'extension/config.ts',
    search: '...(trusted ? { secrets: { ...this.secrets } } : {}),', replace: '...({ secrets: { ...this.secrets } }),', tests: [trust] },
  { name: 'trust: an untrusted workspace\'s model and anchors paths count', file: 'extension/config.ts',
    search: 'const value = trusted ? config.get<string>(name) : config.inspect<string>(name)?.globalValue;', replace: 'const value = config.get<string>(name);', tests: [trust] },
  { name: 'trust: an untrusted workspace\'s model variant counts', file: 'extension/config.ts',
    search: "(trusted ? config.get<string>('modelVariant') : config.inspect<string>('modelVariant')?.globalValue)?.trim()", replace: "config.get<string>('modelVariant')?.trim()", tests: [trust] },
  { name: 'trust: an untrusted workspace\'s template file counts', file: 'extension/config.ts',
    search: "((trusted ? config.get<string>('template') : config.inspect<string>('template')?.globalValue) ?? '')", replace: "(config.get<string>('template') ?? '')", tests: [trust] },
  { name: 'trust: an untrusted workspace may run the model', file: 'extension/config.ts',
    search: 'scoringAllowed: trusted,', replace: 'scoringAllowed: true,', tests: [trust] },
  { name: 'trust: an untrusted workspace\'s serving endpoint is asked about', file: 'extension/config.ts',
    search: "this.path(config, 'model', vscode.workspace.isTrusted, true) ?? '';", replace: "this.path(config, 'model', true, true) ?? '';", tests: [trust] },
  { name: 'trust: Choose Model writes an untrusted workspace\'s settings', file: 'extension/models.ts',
    search: "workspaceValue !== undefined && vscode.workspace.isTrusted", replace: 'workspaceValue !== undefined', tests: [trust] },
  // The server's own check (server/lsp/model-identity.ts): untrusted, it opens no model beyond reading a folder.
  { name: 'trust: the server opens any model in an untrusted workspace', file: 'server/lsp/model-identity.ts',
    search: 'if (!settings.scoringAllowed && (!existsSync(model) || isGgufPath(model))) {', replace: 'if (false) {', tests: [{ file: 'unit/lsp-parts' }] },
  { name: 'trust: the server imports a GGUF file in an untrusted workspace', file: 'server/lsp/model-identity.ts',
    search: '(!existsSync(model) || isGgufPath(model))', replace: '!existsSync(model)', tests: [{ file: 'unit/lsp-parts' }] },
  // The serving key goes only to the servers it is bound to (extension/, and the engine's own check).
  { name: 'key: Cancel sends the key anyway', file: 'extension/models.ts',
    search: "if (answer === 'Send Key') {", replace: "if (answer !== 'Score Without Key') {", tests: [trust] },
  { name: 'key: the key is bound to whatever server the model setting names', file: 'extension/config.ts',
    search: 'apiKeyOrigins: serving.origins }', replace: 'apiKeyOrigins: [...serving.origins, ...this.servingOrigins().map((e) => e.origin)] }', tests: [trust] },
  { name: 'key: the server the key is bound to is asked about again', file: 'extension/serving_key.ts',
    search: '!key.origins.includes(origin) && ', replace: '', tests: [{ file: 'unit/serving-key' }, trust] },
  { name: 'key: the engine sends the key to every endpoint', file: 'server/scoring/serving.ts',
    search: "const permitted = allowed === 'anywhere' || allowed.includes(new URL(endpoint).origin);", replace: 'const permitted = true;', tests: [trust] },
  // Dataset text is shown as text: hovers (Markdown) and the dashboard (HTML).
  { name: 'escape: hover punctuation is not escaped', file: 'server/lsp/markdown.ts',
    search: '.replace(/[!-/:-@[-`{-~]/g, (c) => `\\\\${c}`)', replace: '', tests: [{ file: 'unit/lsp-parts' }] },
  { name: 'escape: a hover\'s anchor instructions are not escaped', file: 'server/lsp/markdown.ts',
    search: 'const label = a ? isolate(escapeMarkdown(shorten(a.turns ? a.instruction || a.output : a.instruction, 70)))', replace: 'const label = a ? isolate(shorten(a.turns ? a.instruction || a.output : a.instruction, 70))', tests: [{ file: 'unit/lsp-parts' }] },
  { name: 'escape: a conversation turn in a hover is not escaped', file: 'server/lsp/markdown.ts',
    search: '${isolate(escapeMarkdown(shorten(turn.content, TURN_PREVIEW)))}', replace: '${isolate(shorten(turn.content, TURN_PREVIEW))}', tests: [{ file: 'unit/lsp-parts', match: 'a conversation in a hover' }] },
  { name: 'escape: a conversation turn in a hover is not isolated', file: 'server/lsp/markdown.ts',
    search: '${isolate(escapeMarkdown(shorten(turn.content, TURN_PREVIEW)))}', replace: '${escapeMarkdown(shorten(turn.content, TURN_PREVIEW))}', tests: [{ file: 'unit/lsp-parts', match: 'a conversation in a hover' }] },
  { name: 'escape: a quote in a dashboard URI ends its attribute', file: 'extension/dashboard_html.ts',
    search: ".replace(/\"/g, '&quot;')", replace: '', tests: [{ file: 'unit/dashboard-html' }] },
  // The dashboard's selection: exactly the records within the brushed ranges, in the table and in what is written.
  { name: 'brush: a range includes its upper bound', file: 'server/lsp/dashboard-queries.ts',
    search: '(max === undefined || v < max)', replace: '(max === undefined || v <= max)', tests: [{ file: 'unit/dashboard-queries' }] },
  { name: 'brush: Export Scores ignores the selection', file: 'server/lsp/dashboard-requests.ts',
    search: 'withinBounds(scores[i], bounds) ?', replace: 'true ?', tests: [{ file: 'integration/lsp' }] },
  // Contrast: the dashboard's texts in the measured colours (the warning colour is 3:1 on Light Modern's white).
  { name: 'contrast: the dashboard\'s warnings in the warning colour', file: 'media/dashboard.css',
    search: '.demo-note, .warning {\n  color: var(--vscode-foreground);', replace: '.demo-note, .warning {\n  color: var(--vscode-editorWarning-foreground);', tests: [{ file: 'unit/badge-contrast' }] },
  { name: 'escape: the dashboard table sets dataset text as HTML', file: 'webview/table.ts',
    search: '    td.textContent = content;', replace: '    td.innerHTML = content;', tests: [{ file: 'webview/dashboard', match: 'dataset text with HTML' }] },
  { name: 'escape: the Parquet table sets dataset text as HTML', file: 'webview/table.ts',
    search: '    td.textContent = content;', replace: '    td.innerHTML = content;', tests: [{ file: 'webview/parquet-table', match: 'dataset text with HTML' }] },
  // The record view (record-view.ts) is the dashboard's and the Parquet table's.
  { name: 'escape: the record view sets dataset text as HTML', file: 'webview/record-view.ts',
    search: 'if (text !== undefined) e.textContent = text;', replace: 'if (text !== undefined) e.innerHTML = text;', tests: [{ file: 'webview/dashboard', match: 'dataset text with HTML' }, { file: 'webview/parquet-table', match: 'dataset text with HTML' }] },
  { name: 'escape: the Parquet table\'s refusal sets the server\'s message as HTML', file: 'webview/parquet-table.ts',
    search: "byId('error').replaceChildren(sentence('Nuggets cannot show this file: ', { text: message.message }));", replace: "byId('error').innerHTML = `Nuggets cannot show this file: ${message.message}`;", tests: [{ file: 'webview/parquet-table', match: 'no readable Parquet' }] },
  // The Parquet table sorts and filters only once the row index is read whole: a stopped index leaves them off.
  { name: 'table: a stopped row index turns sorting on', file: 'webview/parquet-table.ts',
    search: 'const indexed = (): boolean => index?.done === true && !index.problem;', replace: 'const indexed = (): boolean => index?.done === true;', tests: [{ file: 'webview/parquet-table', match: 'stopped row index' }] },
  // One writer per scores file (server/io/lock.ts).
  { name: 'lock: a held lock is overwritten', file: 'server/io/lock.ts',
    search: '        linkSync(temporary, path);', replace: '        renameSync(temporary, path);', tests: [{ file: 'unit/file-lock' }] },
  { name: 'lock: another host\'s lock is judged by a local pid', file: 'server/io/lock.ts',
    search: 'if (owner.host !== hostname() || owner.pid <= 0) return false;', replace: 'if (owner.pid <= 0) return false;', tests: [{ file: 'unit/file-lock' }] },
  { name: 'lock: release removes another writer\'s lock', file: 'server/io/lock.ts',
    search: 'if (held && held.owner.pid === process.pid && held.owner.host === hostname()) rmSync', replace: 'if (held) rmSync', tests: [{ file: 'unit/file-lock' }] },
  // Outputs (server/io/files.ts): never half written, never over an input.
  { name: 'files: a write goes straight into the target', file: 'server/io/files.ts',
    search: "    writeFileSync(temporary, content, 'utf8');\n    renameSync(temporary, path);", replace: "    writeFileSync(path, content, 'utf8');", tests: [{ file: 'unit/files' }] },
  { name: 'files: a failed write leaves its temporary file', file: 'server/io/files.ts',
    search: "    rmSync(temporary, { force: true });\n    throw fileError(err, 'write', path);", replace: "    throw fileError(err, 'write', path);", tests: [{ file: 'unit/files' }] },
  { name: 'files: an input spelled another way is overwritten', file: 'server/io/files.ts',
    search: 'if (resolve(input) === out) {', replace: 'if (input === output) {', tests: [{ file: 'unit/files' }] },
  // Downloads are used only when their checksum is the hub's (server/model/hub.ts).
  { name: 'hub: a file whose sha256 differs is used', file: 'server/model/hub.ts',
    search: 'return actual === file.etag.toLowerCase() ? undefined : `sha256', replace: 'return actual !== \'\' ? undefined : `sha256', tests: [{ file: 'unit/hub', match: 'detected by its sha256' }] },
  { name: 'hub: a file whose git blob id differs is used', file: 'server/model/hub.ts',
    search: 'return actual === file.etag.toLowerCase() ? undefined : `git blob id', replace: 'return actual !== \'\' ? undefined : `git blob id', tests: [{ file: 'unit/hub', match: 'git blob id' }] },
  // Cancel stops at once (server/io/abort.ts, the scoring loop).
  { name: 'cancel: the wait before a retry ignores Cancel', file: 'server/io/abort.ts',
    search: "    signal?.addEventListener('abort', onAbort, { once: true });", replace: '', tests: [{ file: 'unit/http', match: '^cancelling' }] },
  { name: 'cancel: a serving call\'s requests ignore Cancel', file: 'server/io/abort.ts',
    search: "  else signal?.addEventListener('abort', abort, { once: true });", replace: '', tests: [{ file: 'unit/serving', match: 'cancelling stops scoring' }] },
  { name: 'cancel: scoring goes on to its next pass after Cancel', file: 'server/scoring/local.ts',
    search: "  if (signal?.aborted) throw new RequestCancelled('Scoring');", replace: '', tests: [{ file: 'unit/scoring', match: 'a cancelled call stops' }] },
  // Scores computed under another key are never mixed (server/records/store.ts).
  { name: 'store: scores of another model are mixed in', file: 'server/records/store.ts',
    search: 'return a.model.fingerprint === b.model.fingerprint && ', replace: 'return ', tests: [{ file: 'unit/select-store' }] },
  { name: 'store: scores against other anchors are mixed in', file: 'server/records/store.ts',
    search: ' && a.anchors.hash === b.anchors.hash && ', replace: ' && ', tests: [{ file: 'unit/select-store' }] },
  { name: 'store: cached-path and naive-path scores are mixed', file: 'server/records/store.ts',
    search: '\n    && pathOf(a) === pathOf(b);', replace: ';', tests: [{ file: 'unit/select-store' }] },
  { name: 'store: scores made with --turns all and --turns last are mixed', file: 'server/records/store.ts',
    search: "\n    && (a.turns ?? 'last') === (b.turns ?? 'last')", replace: '', tests: [{ file: 'cli/served-conversations', match: '--turns all' }] },
  // A served model's own chat template is never guessed: without a --tokenizer folder the run stops and says what to add.
  { name: 'template: a served model\'s own template is looked for where there is none', file: 'server/scoring/template-choice.ts',
    search: "  if (name === 'chat') {", replace: '  if (false) {', tests: [{ file: 'cli/served-conversations', match: 'its --tokenizer folder' }] },
  // A record is not scored against itself as an anchor (server/scoring/golden.ts).
  { name: 'golden: a record\'s own anchor counts in its score', file: 'server/scoring/golden.ts',
    search: 'if (prepared.responseTokens[i] === 0 || i === selfAnchor) {', replace: 'if (prepared.responseTokens[i] === 0) {', tests: [{ file: 'unit/anchor-choice' }] },
  { name: 'golden: no record is found to be an anchor', file: 'server/scoring/golden.ts',
    search: 'return prepared.anchorById?.get(record.id);', replace: 'return undefined;', tests: [{ file: 'unit/anchor-choice' }] },
  // Problem records (empty, exact duplicates) never enter a selection unless it keeps them (server/selection/select.ts, server/records/problems.ts).
  { name: 'problems: a selection takes problem records', file: 'server/selection/select.ts',
    search: "const problemsLeftOut = rule.problems === 'kept' ? [] : problemsOf(scored);", replace: 'const problemsLeftOut: RecordProblem[] = [];', tests: [{ file: 'unit/select-store' }] },
  { name: 'problems: an empty output is not a problem', file: 'server/records/problems.ts',
    search: "  if (noOutput) return 'empty-output';\n", replace: '', tests: [{ file: 'unit/select-store' }] },
  { name: 'problems: an exact duplicate is not a problem', file: 'server/records/problems.ts',
    search: 'return duplicateOf !== undefined ? { duplicateOf } : undefined;', replace: 'return undefined;', tests: [{ file: 'unit/select-store' }] },
  // Compare Models opens the other model before anything is scored, and tells a bad one in the editor's words (server/lsp/compare-models.ts).
  { name: 'compare: the other model is not checked before scoring', file: 'server/lsp/server.ts',
    search: 'await checkModelToCompare(this.worker, params.other, otherOptions, abort.signal);', replace: '', tests: [{ file: 'integration/lsp-compare-models' }] },
  { name: 'compare: a bad model is told in command-line words', file: 'server/lsp/compare-models.ts',
    search: ".filter((line) => line !== '' && !/(^|[\\s(])--[a-z]/.test(line))", replace: ".filter((line) => line !== '')", tests: [{ file: 'integration/lsp-compare-models' }] },
  { name: 'compare: a model name in the dashboard is not isolated', file: 'webview/compare.ts',
    search: "const name = document.createElement('bdi');", replace: "const name = document.createElement('span');", tests: [{ file: 'webview/dashboard', match: 'Compare Models result' }] },
  // Conversations in the editor (server/lsp/): records that cannot be scored are never scored, and the template is part of the key.
  { name: 'conversation: the editor scores records that cannot be scored', file: 'server/lsp/scoring-runs.ts',
    search: ' || isUnscorable(parsed, r.index)) continue;', replace: ') continue;', tests: [{ file: 'integration/lsp-conversations', match: 'messages JSON Lines' }] },
  { name: 'conversation: records the chat template raises on are not marked', file: 'server/lsp/parsed.ts',
    search: 'if (why !== undefined) problems.set(r.index, { unscorable: why });', replace: '', tests: [{ file: 'unit/lsp-parts', match: 'chat template raises' }] },
  { name: 'conversation: the editor keys chat-template scores as the paper template\'s', file: 'server/lsp/scoring-keys.ts',
    search: 'template: chatTemplate?.key ?? TEMPLATE_ID,', replace: 'template: TEMPLATE_ID,', tests: [{ file: 'integration/lsp-conversations', match: 'scores the CLI wrote' }] },
  // select on Parquet walks the dataset again for the chosen rows (server/selection/select-pass.ts): never rows a rewrite put there.
  { name: 'select: a dataset rewritten between the walks gives other rows', file: 'server/selection/select-pass.ts',
    search: 'if (first?.index !== record.index || first.id !== record.id) throw changedWhileRead(dataset, rerun);', replace: '', tests: [{ file: 'cli/select-streamed', match: 'rewritten' }] },
  // anchors walks the dataset again for the chosen records and k-means' vectors (server/cli/anchors-command.ts): never a rewrite's rows.
  { name: 'walked anchors: a dataset rewritten between the walks gives other anchors', file: 'server/selection/select-pass.ts',
    search: 'if (first?.index !== record.index || first.id !== record.id) throw changedWhileRead(dataset, rerun);', replace: '', tests: [{ file: 'cli/anchors-streamed', match: 'rewritten' }] },
  { name: 'select: the first walk forgets which outputs are empty', file: 'server/selection/select-pass.ts',
    search: "output: r.output === '' ? '' : '…'", replace: "output: '…'", tests: [{ file: 'cli/select-streamed', match: 'every kind of rule' }] },
  // nuggets.turns is part of the editor's key as --turns is of the CLI's (server/lsp/scoring-keys.ts, score-book.ts).
  { name: 'turns: the editor keys --turns all scores as the default\'s', file: 'server/lsp/scoring-keys.ts',
    search: "...(settings.turns === 'all' ? { turns: 'all' as const } : {}),", replace: '', tests: [{ file: 'integration/lsp-turns' }] },
  { name: 'turns: the editor keeps --turns all scores in the default\'s file', file: 'server/lsp/score-book.ts',
    search: ", ...((key.turns ?? 'last') !== 'last' ? [key.turns] : [])", replace: '', tests: [{ file: 'integration/lsp-turns' }] },
  // The early stop's anchor order is the same for a resumed run and for records in flight (server/scoring/anchor-order.ts).
  { name: 'early stop: a resumed run learns other outcomes from the stored (rounded) deltas', file: 'server/scoring/anchor-order.ts',
    search: 'return Math.round(delta * 1e4) > 0;', replace: 'return delta > 0;', tests: [{ file: 'unit/early-stop-order', match: 'lost most often first' }] },
  { name: 'early stop: a resumed run does not learn its stored records first', file: 'server/cli/main.ts',
    search: 'if (ordering) for (const r of records) if (writer.existing.has(r.id)) ordering.learn(writer.existing.get(r.id)!.deltas);', replace: '', tests: [{ file: 'cli/early-stop-resume' }] },
  { name: 'early stop: a record in flight starts before the records its order learns from', file: 'server/scoring/golden.ts',
    search: 'while (ordering.learned < ordering.learnedBefore(first + index) && ', replace: 'while (false && ', tests: [{ file: 'unit/early-stop-order', match: 'resumed run' }] },
  // The question before a long run: a run stopped there scores nothing more (server/lsp/run-probe.ts).
  { name: 'cost probe: the run goes on whatever the user chose', file: 'server/lsp/run-probe.ts',
    search: "if (estimate.ask && choice !== 'continue')", replace: 'if (false)', tests: [{ file: 'integration/lsp-cost-probe' }] },
  // Parquet files in the table editor (server/lsp/parquet-tables.ts): a sort or filter never reads the file whole, and a file over the limit is never read whole.
  { name: 'table: a sorted page reads the file whole', file: 'server/lsp/dashboard-requests.ts',
    search: 'if (this.readsRows(params.textDocument.uri)) return this.tablePages.page(params);',
    replace: "if (this.readsRows(params.textDocument.uri) && (params.sortBy ?? 'index') === 'index' && !params.filter) return this.tablePages.page(params);", tests: [{ file: 'integration/lsp-parquet-table' }] },
  { name: 'table: a file over the whole-read limit is read whole', file: 'server/lsp/parquet-tables.ts',
    search: 'if (!table.info.wholeAllowed) {', replace: 'if (false) {', tests: [{ file: 'integration/lsp-parquet-table' }] },
];

const TEST_TIMEOUT_MS = 180_000;

function occurrences(text, search) {
  let count = 0;
  for (let at = text.indexOf(search); at !== -1; at = text.indexOf(search, at + 1)) count++;
  return count;
}

const only = process.argv[2];
const mutants = only ? MUTANTS.filter((m) => m.name.includes(only)) : MUTANTS;
if (mutants.length === 0) {
  console.error(`no mutant's name contains "${only}"`);
  process.exit(2);
}

// Every search text must still match exactly once: a stale list fails here, before anything runs.
const stale = mutants.flatMap((m) => {
  const path = join(root, m.file);
  const count = existsSync(path) ? occurrences(readFileSync(path, 'utf8'), m.search) : -1;
  return count === 1 ? [] : [`${m.name}: ${count === -1 ? `${m.file} does not exist` : `its search text occurs ${count} times in ${m.file}, not once`}: ${JSON.stringify(m.search)}`];
});
if (stale.length > 0) {
  console.error(`mutants out of date with the code (update tools/mutants.mjs):\n  ${stale.join('\n  ')}`);
  process.exit(2);
}

const files = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
  .stdout.split('\0').filter((f) => f !== '' && f !== 'node_modules' && f !== '.cache' && existsSync(join(root, f)));
const sandbox = mkdtempSync(join(tmpdir(), 'nuggets-mutants-'));
process.on('exit', () => rmSync(sandbox, { recursive: true, force: true }));
process.on('SIGINT', () => process.exit(130)); // Ctrl-C: the exit handler removes the copy
for (const [link, target] of [['shared', join(root, '..', 'shared')]]) {
  if (existsSync(target)) symlinkSync(realpathSync(target), join(sandbox, link));
}

/** A fresh copy of the checkout, with `mutant` applied; its bundles and tests built. */
function prepare(mutant) {
  const copy = join(sandbox, 'checkout');
  rmSync(copy, { recursive: true, force: true });
  for (const file of files) {
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(join(root, file), join(copy, file));
  }
  for (const link of ['node_modules', '.cache']) {
    if (existsSync(join(root, link))) symlinkSync(realpathSync(join(root, link)), join(copy, link));
  }
  if (mutant) {
    const path = join(copy, mutant.file);
    writeFileSync(path, readFileSync(path, 'utf8').replace(mutant.search, () => mutant.replace));
  }
  const build = spawnSync(process.execPath, ['tools/build.mjs', '--tests'], { cwd: copy, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`${mutant ? `mutant "${mutant.name}"` : 'the unmutated copy'} does not build:\n${build.stderr}`);
  return copy;
}

/** Runs one test file there: undefined when every test passed, else the first failing test's name. */
function failingTest(copy, { file, match }) {
  const args = ['--test', '--test-reporter=tap', ...(match ? [`--test-name-pattern=${match}`] : []), join('out', 'test', `${file}.test.js`)];
  const run = spawnSync(process.execPath, args, { cwd: copy, encoding: 'utf8', timeout: TEST_TIMEOUT_MS, env: { ...process.env, NODE_OPTIONS: '' } });
  if (run.error?.code === 'ETIMEDOUT') return `${file}: timed out after ${TEST_TIMEOUT_MS / 1000} s`;
  if (run.status === 0) {
    if (!/^# pass [1-9]/m.test(run.stdout)) throw new Error(`${file}${match ? ` (tests matching /${match}/)` : ''} ran no test: rename the mutant's match`);
    return undefined;
  }
  const failed = /^\s*not ok \d+ - (.*)$/m.exec(run.stdout)?.[1];
  return `${file}: ${failed ?? `exit ${run.status}`}`;
}

const started = Date.now();
const tests = [...new Map(mutants.flatMap((m) => m.tests).map((t) => [`${t.file}|${t.match ?? ''}`, t])).values()];
{
  const copy = prepare(undefined);
  const broken = tests.map((t) => failingTest(copy, t)).filter((f) => f !== undefined);
  if (broken.length > 0) {
    console.error(`the mutants' tests fail without any mutation, so they prove nothing:\n  ${broken.join('\n  ')}`);
    process.exit(2);
  }
  console.log(`unmutated: ${tests.length} test runs pass (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

const survivors = [];
for (const mutant of mutants) {
  const start = Date.now();
  const copy = prepare(mutant);
  let killedBy;
  for (const test of mutant.tests) {
    killedBy = failingTest(copy, test);
    if (killedBy) break;
  }
  const seconds = ((Date.now() - start) / 1000).toFixed(1).padStart(5);
  if (killedBy) {
    console.log(`killed    ${seconds} s  ${mutant.name}  (${killedBy})`);
  } else {
    survivors.push(mutant);
    console.log(`SURVIVED  ${seconds} s  ${mutant.name}  (${mutant.file}; ${mutant.tests.map((t) => t.file).join(', ')} all pass)`);
  }
}
console.log(`${mutants.length - survivors.length} of ${mutants.length} mutants killed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(survivors.length > 0 ? 1 : 0);
