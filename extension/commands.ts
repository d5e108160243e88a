/**
 * The "Nuggets" commands. Each asks the server (server/protocol.ts) and shows the answer; none runs
 * a model here.
 */
import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { WorkDoneProgress } from 'vscode-languageclient/node';
import * as protocol from '../server/protocol';
import { isNoChatTemplate, offerChatml } from './chat_template_offer';
import { activeTableUri, type Ctx, type DatasetRef } from './ctx';
import { SECTION } from './config';
import { showComparison, showDashboard } from './dashboard';
import { noRecordsMessage } from './no_records';
import { applyFasterWay } from './cost_question';
import { chooseModel, confirmServingKey, pickModel, rememberModel, setHubToken, setServingApiKey } from './models';
import { allScored, writeGoldenSubset } from './subset';
import { fullLabel, offeredRules, ruleChoices } from './subset_rules';

export function registerCommands(ctx: Ctx): vscode.Disposable[] {
  const command = (name: string, run: (ctx: Ctx) => Promise<unknown>): vscode.Disposable =>
    vscode.commands.registerCommand(name, async () => {
      try {
        return await run(ctx);
      } catch (err) {
        void vscode.window.showErrorMessage(`Nuggets: ${(err as Error).message}`);
        return undefined;
      }
    });
  return [
    command('nuggets.scoreDataset', scoreDataset),
    command('nuggets.selectGoldenSubset', selectGoldenSubset),
    command('nuggets.chooseAnchors', chooseAnchors),
    command('nuggets.showDashboard', showDashboard),
    command('nuggets.clearScores', clearScores),
    command('nuggets.chooseModel', chooseModel),
    command('nuggets.setHubToken', setHubToken),
    command('nuggets.setServingApiKey', setServingApiKey),
    command('nuggets.compareModels', compareModels),
    vscode.commands.registerCommand('nuggets.goToError', (uri?: string) => goToError(ctx, uri)),
    vscode.commands.registerCommand('nuggets.showRecordEffects', (target?: { uri: string; index: number }) => showRecordEffects(ctx, target)),
  ];
}

/**
 * The active editor's dataset (a text document's, or the table editor's Parquet file); when it has none, says why:
 * it does not parse (with Go to Error), the table editor could not read it, or it is no dataset.
 */
function requireDataset(ctx: Ctx): DatasetRef | undefined {
  const dataset = ctx.activeDataset();
  if (dataset) return dataset;
  const table = vscode.window.activeTextEditor ? undefined : activeTableUri();
  if (table) {
    const refusal = ctx.tableRefusalOf(table);
    void vscode.window.showErrorMessage(refusal ? `Nuggets: ${basename(table.path)} cannot be read: ${refusal}` : `Nuggets: ${basename(table.path)} is still opening; try again in a moment.`);
    return undefined;
  }
  const active = vscode.window.activeTextEditor?.document;
  const problem = active && ctx.problemOf(active.uri);
  if (active && problem) {
    void vscode.window.showErrorMessage(`Nuggets: ${problemText(active.uri, problem)} Fix it to use this dataset; scores already shown wait for it.`, 'Go to Error')
      .then((choice) => choice && goToError(ctx, active.uri.toString()));
  } else {
    const empty = active && /\.jsonl?$/i.test(active.uri.path) ? noRecordsMessage(basename(active.uri.path), active.getText()) : undefined;
    void vscode.window.showInformationMessage(empty ? `Nuggets: ${empty}` : 'Open a dataset first: a JSON array or JSON Lines of Alpaca {"instruction", "input", "output"} records, or of conversations (messages, ShareGPT, prompt/completion).');
  }
  return undefined;
}

/** "data.json:12:5: malformed JSON (expected a comma)." */
export function problemText(uri: vscode.Uri, problem: protocol.DatasetProblem): string {
  const { line, character } = problem.range.start;
  return `${basename(uri.path)}:${line + 1}:${character + 1}: ${problem.message.replace(/\.?$/, '.')}`;
}

/** Puts the cursor where the dataset (the active editor's, or `uri`) stops parsing. */
async function goToError(ctx: Ctx, uri?: string): Promise<void> {
  const target = uri ? vscode.Uri.parse(uri) : vscode.window.activeTextEditor?.document.uri;
  const problem = target && ctx.problemOf(target);
  if (!target || !problem) return;
  const at = new vscode.Position(problem.range.start.line, problem.range.start.character);
  const editor = await vscode.window.showTextDocument(target, { selection: new vscode.Selection(at, at), preserveFocus: false });
  editor.revealRange(new vscode.Range(at, at), vscode.TextEditorRevealType.InCenterIfOutsideViewport);
}

/** The hover's "Show all anchor effects" link: the dashboard, on that record. */
async function showRecordEffects(ctx: Ctx, target?: { uri: string; index: number }): Promise<void> {
  if (!target || typeof target.uri !== 'string' || !Number.isInteger(target.index)) return;
  const uri = vscode.Uri.parse(target.uri);
  if (vscode.window.activeTextEditor?.document.uri.toString() !== uri.toString()) await vscode.window.showTextDocument(uri);
  await showDashboard(ctx, { focus: target.index });
}

async function scoreDataset(ctx: Ctx): Promise<protocol.ScoreDatasetResult | undefined> {
  const document = requireDataset(ctx);
  if (!document) return undefined;
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showWarningMessage('Nuggets runs a model to score, which is disabled in untrusted workspaces. Trust this workspace to score.', 'Manage Workspace Trust')
      .then((choice) => choice && vscode.commands.executeCommand('workbench.trust.manage'));
    return undefined;
  }
  await confirmServingKey(ctx);
  const name = basename(document.uri.path);
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Nuggets: scoring ${name}`, cancellable: true },
    async (progress, token) => {
      const workDoneToken = randomUUID();
      let reported = 0;
      const listener = ctx.client.onProgress(WorkDoneProgress.type, workDoneToken, (value) => {
        if (value.kind === 'end') return;
        const percentage = value.percentage ?? reported;
        progress.report({ message: value.message, increment: percentage - reported });
        reported = percentage;
      });
      const started = Date.now();
      try {
        const result = await ctx.request(protocol.scoreDataset, { textDocument: { uri: document.uri.toString() }, workDoneToken }, token);
        logRun(ctx, name, result);
        const summary = `${result.scored}/${result.total} records scored`;
        // The first run of a dataset chooses its anchors: it says which.
        const chosen = result.anchorsChosen ? `chose ${result.anchorsChosen.count} anchors by k-means from this file${result.anchorsChosen.skipped ? ` (${result.anchorsChosen.skipped})` : ''}; ` : '';
        if (result.fasterWay) void applyFasterWay(result.fasterWay);
        else if (result.cancelled) void vscode.window.showInformationMessage(`Nuggets: ${chosen}scoring cancelled; ${summary}. Completed records are kept.`);
        else if (result.scoredNow === 0) void vscode.window.showInformationMessage(`Nuggets: ${chosen}${name} was already scored (${summary}).`);
        else void vscode.window.showInformationMessage(`Nuggets: ${chosen}scored ${result.scoredNow} records of ${name} in ${result.seconds.toFixed(1)} s (${summary}).`);
        return result;
      } catch (err) {
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        if (token.isCancellationRequested) {
          ctx.log.info(`[run] ${name}: cancelled after ${seconds} s; completed records are kept`);
          void vscode.window.showInformationMessage('Nuggets: scoring cancelled. Completed records are kept.');
          return undefined;
        }
        ctx.log.error(`[run] ${name}: failed after ${seconds} s: ${(err as Error).message}`);
        if (isNoChatTemplate(err)) {
          void offerChatml((err as Error).message);
          return undefined;
        }
        throw err;
      } finally {
        listener.dispose();
      }
    },
  );
}

/** One line per Score Dataset run in the Nuggets log: model and fingerprint, anchors, records scored and skipped, duration, outcome. */
function logRun(ctx: Ctx, name: string, result: protocol.ScoreDatasetResult): void {
  if (result.anchorsChosen) ctx.log.info(`[run] ${name}: chose ${result.anchorsChosen.count} anchors by k-means from the file${result.anchorsChosen.skipped ? `; ${result.anchorsChosen.skipped}` : ''}`);
  if (result.excludedAnchors) ctx.log.warn(`[run] ${name}: ${result.excludedAnchors}`);
  ctx.log.info(protocol.runLine('run', name, {
    ...result, done: `scored ${result.scoredNow} records, skipped ${result.skipped ?? 0} already scored; ${result.scored}/${result.total} current`,
    ...(result.fasterWay ? { outcome: `stopped after its probe for a faster way (${result.fasterWay}), completed records kept` }
      : result.cancelled ? { outcome: 'cancelled, completed records kept' } : {}),
  }));
}

interface RuleItem extends vscode.QuickPickItem {
  rule?: protocol.SelectionRule;
  group?: string;
  custom?: 'min-score' | 'top' | 'top-percent';
}

async function selectGoldenSubset(ctx: Ctx): Promise<protocol.SelectSubsetResult | undefined> {
  const document = requireDataset(ctx);
  if (!document) return undefined;
  const textDocument = { uri: document.uri.toString() };
  const offered = offeredRules(ctx.recordCount(document.uri));
  const preview = await ctx.request(protocol.selectionPreview, { textDocument, rules: offered.map((o) => o.rule) });
  if (!(await allScored(preview))) return undefined;
  // The suggested rule comes first, so that accepting the default writes records (the paper's top 1% when it keeps any).
  const items: RuleItem[] = [];
  for (const choice of ruleChoices(offered, preview.counts, preview.total)) {
    if (items.at(-1)?.group !== choice.group) items.push({ label: choice.group, kind: vscode.QuickPickItemKind.Separator, group: choice.group });
    items.push({ label: choice.label, description: choice.description, rule: choice.rule, group: choice.group });
  }
  items.push(
    { label: 'Custom', kind: vscode.QuickPickItemKind.Separator },
    { label: 'Golden score ≥ …', description: 'choose a threshold', custom: 'min-score' },
    { label: 'Top k …', description: 'choose a count', custom: 'top' },
    { label: 'Top percent …', description: 'choose a percentage', custom: 'top-percent' },
  );
  const picked = await vscode.window.showQuickPick(items, {
    title: `Nuggets: select the golden subset of ${basename(document.uri.path)}`,
    placeHolder: 'Keep records by golden score threshold, top k, or top percent; problem records are left out; the source file is not modified',
  });
  if (!picked) return undefined;
  const rule = picked.rule ?? (picked.custom ? await customRule(ctx, textDocument, picked.custom, preview.total) : undefined);
  if (!rule) return undefined;
  const { counts } = await ctx.request(protocol.selectionPreview, { textDocument, rules: [rule] });
  return writeGoldenSubset(ctx, textDocument, { rule, label: fullLabel(rule), kept: counts[0]! });
}

async function customRule(ctx: Ctx, textDocument: { uri: string }, kind: 'min-score' | 'top' | 'top-percent', total: number): Promise<protocol.SelectionRule | undefined> {
  const spec = {
    'min-score': { prompt: 'Keep records with a golden score at or above (0 to 1)', value: '0.85', make: (x: number) => ({ kind: kind as 'min-score', minScore: x }), ok: (x: number) => x >= 0 && x <= 1 },
    top: { prompt: `Keep the best k records (1 to ${total})`, value: String(Math.min(100, total)), make: (x: number) => ({ kind: kind as 'top', count: x }), ok: (x: number) => Number.isInteger(x) && x >= 1 },
    'top-percent': { prompt: 'Keep the best p percent of records (0 to 100]', value: '10', make: (x: number) => ({ kind: kind as 'top-percent', percent: x }), ok: (x: number) => x > 0 && x <= 100 },
  }[kind];
  const text = await vscode.window.showInputBox({
    prompt: spec.prompt,
    value: spec.value,
    validateInput: async (input) => {
      const x = Number(input);
      if (input.trim() === '' || !Number.isFinite(x) || !spec.ok(x)) return spec.prompt;
      const { counts } = await ctx.request(protocol.selectionPreview, { textDocument, rules: [spec.make(x) as protocol.SelectionRule] });
      return { message: `Keeps ${counts[0]} of ${total} records.`, severity: vscode.InputBoxValidationSeverity.Info };
    },
  });
  return text === undefined ? undefined : (spec.make(Number(text)) as protocol.SelectionRule);
}

async function chooseAnchors(ctx: Ctx): Promise<protocol.AnchorSetInfo | undefined> {
  const document = requireDataset(ctx);
  if (!document) return undefined;
  const total = ctx.recordCount(document.uri);
  const picked = await vscode.window.showQuickPick([
    { label: 'k-means', description: 'N records nearest the centres of N clusters of this dataset (the paper\'s choice)', method: 'kmeans' as const },
    { label: 'Random', description: 'N random records of this dataset', method: 'random' as const },
    { label: 'From a file…', description: 'an Alpaca JSON or JSON Lines file of anchor records', method: 'file' as const },
  ], { title: 'Nuggets: choose the anchor set', placeHolder: 'Anchors are the tasks every record is scored against; changing them marks current scores stale' });
  if (!picked) return undefined;
  let choice: protocol.AnchorChoice;
  if (picked.method === 'file') {
    const files = await vscode.window.showOpenDialog({ canSelectMany: false, openLabel: 'Use as anchors', filters: { 'Alpaca records': ['json', 'jsonl'] } });
    if (!files?.[0]) return undefined;
    choice = { method: 'file', path: files[0].fsPath };
  } else {
    const text = await vscode.window.showInputBox({
      prompt: `How many anchors (1 to ${total})? The paper uses 100.`,
      value: String(Math.min(100, total)),
      validateInput: (input) => {
        const n = Number(input);
        return Number.isInteger(n) && n >= 1 && n <= total ? undefined : `A whole number from 1 to ${total}.`;
      },
    });
    if (text === undefined) return undefined;
    choice = { method: picked.method, count: Number(text) };
  }
  const info = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Nuggets: choosing anchors…' },
    () => ctx.request(protocol.chooseAnchors, { textDocument: { uri: document.uri.toString() }, choice }));
  const stale = info.staleRecords > 0 ? ` ${info.staleRecords} scores are now stale.` : '';
  const skipped = info.skipped ? ` ${info.skipped}.` : '';
  const action = await vscode.window.showInformationMessage(`Nuggets: ${info.count} anchors chosen (${info.description}).${skipped}${stale}`, 'Score Dataset');
  if (action) await vscode.commands.executeCommand('nuggets.scoreDataset');
  return info;
}

async function clearScores(ctx: Ctx): Promise<{ removed: number } | undefined> {
  const document = requireDataset(ctx);
  if (!document) return undefined;
  const name = basename(document.uri.path);
  const confirm = await vscode.window.showWarningMessage(`Remove every stored Nuggets score of the records in ${name}? The file itself is not changed.`, { modal: true }, 'Clear Scores');
  if (confirm !== 'Clear Scores') return undefined;
  const result = await ctx.request(protocol.clearScores, { textDocument: { uri: document.uri.toString() } });
  void vscode.window.showInformationMessage(`Nuggets: removed ${result.removed} stored scores of ${name}.`);
  return result;
}

/**
 * Nuggets: Compare Models on a Sample: can the current model stand in for another? (as `nuggets agree`). The other
 * model comes from Choose Model's pick list; the server opens it before scoring anything. The result goes into the
 * dashboard, in words, and a notification says the verdict.
 */
async function compareModels(ctx: Ctx): Promise<protocol.CompareModelsResult | undefined> {
  const document = requireDataset(ctx);
  if (!document) return undefined;
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showWarningMessage('Nuggets runs both models to compare them, which is disabled in untrusted workspaces. Trust this workspace to compare.', 'Manage Workspace Trust')
      .then((choice) => choice && vscode.commands.executeCommand('workbench.trust.manage'));
    return undefined;
  }
  const config = vscode.workspace.getConfiguration(SECTION);
  const current = (config.get<string>('model') ?? '').trim();
  const currentName = ctx.scoresOf(document.uri)?.model ?? (current || 'the bundled demo model');
  const picked = await pickModel(ctx, {
    title: `Nuggets: compare ${currentName} with…`,
    placeHolder: 'Both models score the same random records of this dataset; nothing is stored and the model setting stays as it is.',
    current, currentVariant: config.get<string>('modelVariant') ?? 'fp32',
  });
  if (!picked) return undefined;
  const other = picked.model === '' ? ctx.config.bundledModel : picked.model;
  const total = ctx.recordCount(document.uri);
  const sampleText = await vscode.window.showInputBox({
    title: 'Nuggets: records to compare on', prompt: `How many random records of this dataset both models score (3 to ${total})`, value: String(Math.max(3, Math.min(100, total))),
    validateInput: (v) => (Number.isInteger(Number(v)) && Number(v) >= 3 ? undefined : 'A whole number, at least 3: a rank correlation needs 3 records.'),
  });
  if (!sampleText) return undefined;
  const otherName = picked.model === '' ? 'the demo model' : basename(other);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Nuggets: comparing ${currentName} with ${otherName} on ${sampleText} records…`, cancellable: true },
    (_progress, token) => ctx.request(protocol.compareModels, {
      textDocument: { uri: document.uri.toString() }, other, ...(picked.variant ? { otherVariant: picked.variant } : {}), sample: Number(sampleText),
    }, token)
      .catch((err: unknown) => {
        if (!token.isCancellationRequested) throw err;
        void vscode.window.showInformationMessage('Nuggets: the comparison was cancelled.');
        return undefined;
      }),
  );
  if (!result) return undefined;
  await rememberModel(ctx, picked);
  showComparison(ctx, document.uri, result);
  void vscode.window.showInformationMessage(`Nuggets: ${result.verdict}`, 'Show in Dashboard')
    .then((choice) => choice && showComparison(ctx, document.uri, result));
  return result;
}
