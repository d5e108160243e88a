/**
 * The command line: the same engine as the editor, for headless, sharded and scripted runs.
 *
 *   nuggets anchors <dataset> (--kmeans N | --random N) [--seed S] --out anchors.json
 *   nuggets score   <dataset> --anchors anchors.json [--model folder] --out scores.jsonl [--shard i/n]
 *   nuggets select  <dataset> --scores scores.jsonl [--by signal] (--min-score t | --top k | --top-percent p | bounds) [--diverse tau] --out golden.json
 */
import { existsSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describeSkipped, readAnchors } from '../records/anchors';
import { NoRecordsError, RECORD_FORMATS, type DatasetRecord, type RecordFormat, type RejectedRecord } from '../records/dataset';
import { fileError, NuggetsError } from '../io/errors';
import { openRecordBatches, type RecordBatch } from '../records/parquet';
import { assertNotInput } from '../io/files';
import { RequestCancelled } from '../io/http';
import { DEFAULT_OPTIONS, DEFAULT_RECORDS_IN_FLIGHT, type PreparedAnchors, type ScoringBackend, type ScoringOptions } from '../scoring/backend';
import { AnchorOrder } from '../scoring/anchor-order';
import { CostProbe, describeEstimate, estimateCost, LONG_RUN_SECONDS, RunProbe } from '../scoring/cost-estimate';
import { describeExcluded, excludedAnchors, scoreRecords } from '../scoring/golden';
import { FileLock } from '../io/lock';
import { LocalBackend, type ScoringPath } from '../scoring/local';
import { openBackend } from '../scoring/open';
import type { ChatTemplate } from '../scoring/chat-template';
import { chatTemplateFor, templateNameFor, unrenderable } from '../scoring/template-choice';
import { TEMPLATE_ID } from '../scoring/template';
import { ScoresWriter, type ScoresHeader } from '../records/store';
import { EmbeddingsSink, embeddingsPathFor } from '../signals/embedding-file';
import { downloadProgress, importProgress } from './download-progress';
import { integerFlag, numberFlag, parse, rangeFlag, required, UsageError } from './flags';
import { formatDuration } from '../protocol';
import { ProgressBar } from './progress';
import { agreeCommand } from './agree-command';
import { anchorsCommand } from './anchors-command';
import { selectCommand } from './select-command';
import { printSummary, summaryRecord, type SummaryRecord } from './summary';

const USAGE = `Usage:
  nuggets anchors <dataset> (--kmeans N | --random N) [--seed S] [--format F] --out anchors.json
  nuggets score   <dataset> --anchors anchors.json --out scores.jsonl
                  [--format alpaca|messages|sharegpt|prompt-completion|dolly]  (default: detected per file)
                  [--template paper|chat|chatml|FILE.jinja]  (default: paper for Alpaca records, chat (the model's own) for conversations;
                                                              a served model's own is read from its --tokenizer folder)
                  [--turns last|all]  (the assistant turns ppl_cond, ppl_direct and ifd read; default last)
                  [--model <folder> | <file>.gguf | ollama:<name>[:<tag>] | hf:<owner>/<name>[/<file>.gguf][@rev] | http://host:8000/v1[,...] | sglang+http://host:30000]
                  [--shard i/n] [--max-anchor-tokens 200] [--batch-size 16] [--threads T]
                  [--variant fp32|quantized|q4|...] [--reference] [--cache-dir DIR (default: the system cache folder, e.g. ~/.cache/nuggets)] [--offline]
                  [--served-model NAME] [--endpoint URL ...] [--concurrency N] [--context-length N]
                  [--records-in-flight N]  (records scored at once by a serving engine; default 4, a local model 1)
                  [--tokenizer <folder | tokenizer.json | hf:owner/name>]  (a served model's tokenizer and chat template)
                  [--send-api-key-anywhere]
                  [--timeout SECONDS]  (per request to a hub or server; default 60 for the hub, 300 for serving)
                  [--min-score T]  (exact early stop: records get a bound, ">= T" or "< T")
                  [--wait]  (when another run writes the same --out, wait for it instead of refusing)
  nuggets select  <dataset> --scores scores.jsonl [--scores more.jsonl ...] --out golden.json
                  [--by golden|mean_delta|ppl_cond|ppl_direct|ifd] [--top K | --top-percent P]
                  [--min-score T] [--min-<signal> X] [--max-<signal> Y]  (e.g. --max-ifd 1: min inclusive, max exclusive)
                  [--diverse TAU] [--baseline random [--seed S]] [--with-scores]
                  [--keep-problems]  (also select records with an empty instruction or output, and exact duplicates)
  nuggets select  --card golden.card.json [--out again.json]  (make the selection again and check it)
  nuggets agree   <dataset> --anchors anchors.json --model M1 --model M2 [--sample 100] [--seed S]
                  [--min-score 0.85] [--variant V1 --variant V2]  (can M1 stand in for M2?)
                  [--format F] [--template paper|chat|chatml|FILE.jinja] [--tokenizer <folder>]  (as for score;
                                                              two --template flags: one per --model, in order)

<dataset> is a JSON array or JSON Lines file of Alpaca, messages, ShareGPT, prompt/completion or Dolly records,
or a Parquet file or folder of .parquet shards (select --out x.parquet writes Parquet). --model defaults to the bundled demo model.`;

/**
 * Faults the tests inject (NUGGETS_TEST_FAULT=<name>), honoured only where tools/build.mjs defines this true:
 * out/cli-faults.js, the tests' build. dist/cli.js, which ships, is built with it false and ignores the variable.
 *   internal-error  an error no handler expects, as a bug would throw: exit 70 with its stack trace.
 */
declare const NUGGETS_TEST_FAULTS: boolean;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (NUGGETS_TEST_FAULTS && process.env['NUGGETS_TEST_FAULT'] === 'internal-error') throw new Error('a fault injected by NUGGETS_TEST_FAULT=internal-error');
    switch (command) {
      case 'anchors':
        return await anchorsCommand(rest, formatFlag);
      case 'score':
        return await scoreCommand(rest);
      case 'select':
        return await selectCommand(rest);
      case 'agree':
        return await agreeCommand(rest, bundledModelPath, formatFlag);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE + '\n');
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof RequestCancelled) {
      // Only a signal cancels (see scoreCommand): what was completed is on disk.
      process.stderr.write(`nuggets: ${err.message} Completed records are kept; run the same command again to resume.\n`);
      return 130;
    }
    if (err instanceof NuggetsError) {
      process.stderr.write(`nuggets: ${err.describe()}\n`);
      return 1;
    }
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`nuggets: ${(err as Error).message}\n\n${USAGE}\n`);
      return 2;
    }
    const failed = err as NodeJS.ErrnoException;
    if (typeof failed.syscall === 'string' && typeof failed.path === 'string') {
      // A file operation the engine did not expect to fail (a full disk, a permission): said in words.
      process.stderr.write(`nuggets: ${fileError(failed, failed.syscall, failed.path).describe()}\n`);
      return 1;
    }
    throw err;
  }
}

/** --turns: which assistant turns the signals read (last, the default, or all). */
function turnsFlag(value: string | undefined): 'last' | 'all' | undefined {
  if (value === undefined || value === 'last' || value === 'all') return value;
  throw new UsageError(`--turns expects last or all (got "${value}")`);
}

function formatFlag(value: string | undefined): RecordFormat | undefined {
  if (value === undefined) return undefined;
  if (!(RECORD_FORMATS as readonly string[]).includes(value)) throw new UsageError(`--format expects one of ${RECORD_FORMATS.join(', ')} (got "${value}")`);
  return value as RecordFormat;
}

/**
 * Each record that cannot be scored, where and why: the first 20 of a run named (`before` were named or counted
 * already), then each batch's count.
 */
function warnRejected(rejected: readonly RejectedRecord[], before = 0): void {
  const named = Math.max(0, Math.min(rejected.length, 20 - before));
  for (const r of rejected.slice(0, named)) process.stderr.write(`warning: ${r.where}: record skipped: ${r.why}.\n`);
  if (rejected.length > named) process.stderr.write(`warning: … and ${rejected.length - named} more records skipped.\n`);
}

/** The demo model shipped with the package: models/demo beside the bundle, found from wherever this file runs. */
export function bundledModelPath(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const candidate = join(dir, 'models', 'demo');
    if (existsSync(join(candidate, 'config.json'))) return candidate;
    if (dirname(dir) === dir) throw new NuggetsError('The bundled demo model (models/demo) was not found; pass --model <folder>.');
  }
}

export function parseShard(value: string | undefined): { index: number; count: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) throw new UsageError(`--shard expects i/n with 0 <= i < n (got "${value}")`);
  return { index, count };
}

/**
 * Shard i of n: the positions [from, to) of a contiguous slice of `size` records (JSON) or rows (Parquet), so that
 * shards' outputs concatenate in dataset order. A Parquet dataset's bounds are taken over its rows before any is read.
 * Positions count every record, those that cannot be scored included (their 0-based index everywhere).
 */
export function shardBounds(size: number, shard: { index: number; count: number } | undefined): { from: number; to: number } {
  if (!shard) return { from: 0, to: Infinity };
  return { from: Math.floor((shard.index * size) / shard.count), to: Math.floor(((shard.index + 1) * size) / shard.count) };
}

/** The threshold a run without --min-score is estimated with early stop at (the paper's subsets go to 0.85). */
const DEFAULT_THRESHOLD = 0.85;

async function scoreCommand(args: string[]): Promise<number> {
  const { values, dataset } = parse(args, {
    anchors: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' }, shard: { type: 'string' },
    'max-anchor-tokens': { type: 'string' }, 'batch-size': { type: 'string' }, threads: { type: 'string' },
    variant: { type: 'string' }, separator: { type: 'string' }, reference: { type: 'boolean' },
    'cache-dir': { type: 'string' }, offline: { type: 'boolean' }, endpoint: { type: 'string', multiple: true },
    'served-model': { type: 'string' }, concurrency: { type: 'string' }, 'context-length': { type: 'string' },
    'min-score': { type: 'string' }, timeout: { type: 'string' }, tokenizer: { type: 'string' },
    'send-api-key-anywhere': { type: 'boolean' }, wait: { type: 'boolean' }, 'records-in-flight': { type: 'string' },
    format: { type: 'string' }, template: { type: 'string' }, turns: { type: 'string' },
  });
  const out = required(values.out, '--out');
  const anchorsPath = required(values.anchors, '--anchors');
  assertNotInput(out, [dataset, anchorsPath]);
  const options: ScoringOptions = {
    maxAnchorTokens: integerFlag(values['max-anchor-tokens'], '--max-anchor-tokens', 1) ?? DEFAULT_OPTIONS.maxAnchorTokens,
    batchSize: integerFlag(values['batch-size'], '--batch-size', 1) ?? DEFAULT_OPTIONS.batchSize,
    separator: values.separator ?? DEFAULT_OPTIONS.separator,
  };
  const earlyStopAt = rangeFlag(values['min-score'], '--min-score', 0, 1, true) ?? null;
  const shard = parseShard(values.shard);
  const threads = integerFlag(values.threads, '--threads', 0);
  const concurrency = integerFlag(values.concurrency, '--concurrency', 1);
  const contextLength = integerFlag(values['context-length'], '--context-length', 1);
  const recordsInFlight = integerFlag(values['records-in-flight'], '--records-in-flight', 1);
  const timeout = numberFlag(values.timeout, '--timeout');
  if (timeout !== undefined && !(timeout > 0)) throw new UsageError(`--timeout expects seconds above 0 (got ${values.timeout})`);
  // Read a batch at a time (a Parquet row group, or a JSON file whole), so that a shard larger than memory is scored
  // all the same: what is kept of each record is its score on disk and its summary line.
  const source = await openRecordBatches(dataset, formatFlag(values.format));
  const bounds = shardBounds(source.size, shard);
  const batches = source.batches();
  const first = await batches.next();
  const anchors = readAnchors(anchorsPath);
  if (anchors.skipped) process.stderr.write(`warning: ${anchorsPath}: ${describeSkipped(anchors.skipped)}\n`);
  if (anchors.rejected) for (const r of anchors.rejected) process.stderr.write(`warning: ${r.where}: anchor skipped: ${r.why}.\n`);
  const firstRecords = first.done ? [] : first.value.records;
  if (first.done) throw new NoRecordsError(dataset);
  const recordsHoldConversations = firstRecords.some((r) => r.turns);
  const conversations = recordsHoldConversations || anchors.anchors.some((a) => a.turns);
  const templateName = templateNameFor(values.template, conversations);
  const turns = turnsFlag(values.turns) ?? 'last';
  options.turns = turns;
  const paperRefusal = (): NuggetsError => new NuggetsError(
    `${recordsHoldConversations || !anchors.anchors.some((a) => a.turns) ? dataset : anchorsPath} holds conversations (${source.recordFormat() ?? 'alpaca'} records), which the paper's Alpaca template cannot score.`,
    'Use a chat template: --template chat (the model\'s own), --template chatml, or --template FILE.jinja.',
  );
  if (templateName === 'paper' && conversations) throw paperRefusal();
  const path: ScoringPath = values.reference ? 'naive' : 'cached';
  // One writer per scores file: a second run on the same --out would score every record again.
  const lock = await FileLock.acquire(out, {
    wait: values.wait === true,
    onWaiting: (owner) => process.stderr.write(`waiting: ${out} is being written by pid ${owner.pid} on ${owner.host} (lock file ${FileLock.pathOf(out)})…\n`),
  });

  // The first SIGINT or SIGTERM aborts requests in flight (downloads, serving requests) and stops
  // between records; every completed record is on disk already. 1.8 s later the process exits anyway
  // (a request that ignores the abort). A local ONNX pass blocks this thread, so this handler and that
  // timer run only once the pass under way ends. A second signal exits at once.
  const controller = new AbortController();
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    controller.abort();
    process.stderr.write('\ninterrupted: stopping; completed records are on disk.\n');
    setTimeout(() => process.exit(130), 1800).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const stopListening = (): void => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  const backend = await openBackend(values.model ?? values.endpoint?.join(',') ?? bundledModelPath(), {
    signal: controller.signal, ...(timeout ? { timeoutMs: timeout * 1000 } : {}),
    ...(values.tokenizer ? { tokenizer: values.tokenizer } : {}),
    ...(values['send-api-key-anywhere'] ? { apiKeyOrigins: 'anywhere' as const } : {}),
    onWarning: (message: string) => process.stderr.write(`nuggets: warning: ${message}\n`),
    path, ...(values.variant ? { variant: values.variant } : {}), ...(threads ? { threads } : {}),
    ...(values['cache-dir'] ? { cacheDir: values['cache-dir'] } : {}), ...(values.offline ? { offline: true } : {}),
    ...(values.model && values.endpoint ? { endpoints: values.endpoint } : {}),
    ...(values['served-model'] ? { servedModel: values['served-model'] } : {}),
    ...(concurrency ? { concurrency } : {}), ...(contextLength ? { contextLength } : {}),
    onDownload: downloadProgress(), onImport: importProgress(),
  }).catch((err: unknown) => {
    stopListening();
    lock.release();
    throw err;
  });
  try {
    const local = backend instanceof LocalBackend;
    if (values.reference && !local) process.stderr.write('nuggets: warning: --reference applies to local models only; a serving engine has one path.\n');
    if (local && recordsInFlight !== undefined && recordsInFlight > 1) process.stderr.write('nuggets: warning: --records-in-flight applies to serving engines; a local model scores one record at a time.\n');
    // A serving engine batches the requests of several records, and idles between one record's requests and the next's.
    const inFlight = local ? 1 : recordsInFlight ?? DEFAULT_RECORDS_IN_FLIGHT;
    let chatTemplate: ChatTemplate | undefined;
    if (templateName !== 'paper') {
      chatTemplate = chatTemplateFor(templateName, backend);
      options.chatTemplate = chatTemplate;
    }
    const header: ScoresHeader = {
      nuggets_scores: 1,
      model: { name: backend.identity.name, fingerprint: backend.identity.fingerprint, variant: values.variant ?? null },
      anchors: { hash: anchors.hash, count: anchors.anchors.length, source: basename(anchorsPath) },
      template: chatTemplate?.key ?? TEMPLATE_ID, ...(chatTemplate ? { templateSource: chatTemplate.source } : {}), maxAnchorTokens: options.maxAnchorTokens, separator: options.separator, earlyStopAt,
      // Part of the key: a rerun with the other path is refused, as one with another model is. Local models only (store.ts ScoringKey).
      ...(local ? { scoringPath: path } : {}),
      // Part of the key, written only when it is not the default, so that headers from before --turns read as they were.
      ...(turns !== 'last' ? { turns } : {}),
      dataset: basename(dataset), shard: values.shard ?? null, created: new Date().toISOString(),
    };
    const writer = ScoresWriter.open(out, header);
    const embeddings = new EmbeddingsSink(embeddingsPathFor(out), backend.identity.fingerprint, () => writer.existing.size);
    // The records of this run's slice, as the summary keeps them; the rejected ones only counted once named.
    const seen: SummaryRecord[] = [];
    let rejected = 0;
    let scoredNow = 0;
    // The records of a batch this run scores: those in its slice that the template can render (the others named and
    // counted), each kept for the summary.
    const admit = (batch: RecordBatch): DatasetRecord[] => {
      const found = batch.rejected.filter((r) => r.position >= bounds.from && r.position < bounds.to);
      let records = batch.records.filter((r) => r.index >= bounds.from && r.index < bounds.to);
      if (records.some((r) => r.turns) && !chatTemplate) throw paperRefusal(); // Alpaca rows with a history, after others without
      if (chatTemplate) {
        const byIndex = new Map(records.map((r) => [r.index, r]));
        const check = unrenderable(records, chatTemplate, (index) => `${dataset} record ${index} ("${byIndex.get(index)!.instruction.slice(0, 40).replace(/\s+/g, ' ')}…")`);
        found.push(...check.rejected);
        records = records.filter((r) => check.kept.has(r.index));
      }
      warnRejected(found, rejected);
      rejected += found.length;
      for (const r of records) seen.push(summaryRecord(r));
      return records;
    };
    const firstAdmitted = admit(first.value);
    // The slice's records already in the scores file and still to score: exact for JSON, read whole as the first
    // batch; for Parquet, as far as can be told before reading every row group (the progress bar's total).
    const whole = source.format !== 'parquet';
    const resumed = whole ? firstAdmitted.filter((r) => writer.existing.has(r.id)).length : writer.existing.size;
    const expected = whole ? firstAdmitted.length - resumed : Math.max(0, Math.min(bounds.to, source.size) - bounds.from - resumed);
    process.stderr.write(`scoring ${whole ? `${expected} records` : `up to ${expected} records, a row group at a time,`} against ${anchors.anchors.length} anchors with ${backend.identity.name}${local ? ` (${path} path)` : ''}`
      + `${chatTemplate ? `, chat template ${chatTemplate.key} (${chatTemplate.source})` : ''}`
      + `${resumed > 0 ? `; ${resumed} already in ${out}, skipped` : ''}\n`);

    const started = Date.now();
    const progress = new ProgressBar(expected, 'records');
    let prepared: PreparedAnchors | undefined;
    // The early stop tries the anchors records lost most often first (anchor-order.ts).
    const ordering = earlyStopAt !== null ? new AnchorOrder(anchors.anchors.length, inFlight) : undefined;
    // The first records are a probe: once they end, a long run says what it will cost (one line).
    const probe = new RunProbe();
    const timer = new CostProbe();
    const timed = timer.wrap(backend);
    try {
      for (let records = firstAdmitted; !interrupted;) {
        const todo = records.filter((r) => !writer.existing.has(r.id));
        // A resumed run learns its stored records first, in the file's order, so that its early stop tries the anchors
        // in the order an uninterrupted run would (anchor-order.ts).
        if (ordering) for (const r of records) if (writer.existing.has(r.id)) ordering.learn(writer.existing.get(r.id)!.deltas);
        if (todo.length > 0) {
          if (!prepared) {
            prepared = await backend.prepareAnchors(anchors.anchors, options, controller.signal);
            const excluded = excludedAnchors(prepared, options.maxAnchorTokens);
            if (excluded.length > 0) process.stderr.write(`warning: ${describeExcluded(excluded, anchors.anchors, options.maxAnchorTokens)}\n`);
          }
          const anchorsPrepared = prepared;
          await scoreRecords(timed, anchorsPrepared, todo, (score) => {
            embeddings.append(score.id, score.embedding);
            writer.append(score);
            scoredNow++;
            const probed = probe.add(timer.take(score));
            if (probed && expected > scoredNow) {
              const estimate = estimateCost(probed.records, anchorsPrepared, expected - scoredNow, earlyStopAt ?? DEFAULT_THRESHOLD, options.batchSize, probed.seconds);
              if (Math.max(estimate.fullSeconds, estimate.earlyStop.seconds) >= LONG_RUN_SECONDS) {
                process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[K' : ''}${describeEstimate(estimate, earlyStopAt !== null)}\n`);
              }
            }
            progress.tick();
          }, controller.signal, earlyStopAt !== null ? { threshold: earlyStopAt, batchSize: options.batchSize, ordering } : undefined, inFlight);
        }
        const next = interrupted ? undefined : await batches.next();
        // Past this run's slice, nothing more is read.
        if (!next || next.done || (next.value.records[0]?.index ?? -1) >= bounds.to) break;
        records = admit(next.value);
      }
      if (scoredNow > 0) progress.finish();
    } finally {
      writer.close();
      embeddings.close();
      // A sidecar only ever accompanies a scores file: a run that stored no score leaves no embeddings either.
      if (!existsSync(out)) rmSync(embeddingsPathFor(out), { force: true });
    }
    const scored = seen.filter((r) => writer.existing.has(r.id)).length;
    if (interrupted) {
      process.stderr.write(`stopped with ${scored} of ${whole ? firstAdmitted.length : `the ${seen.length} records read`} in ${out}; run the same command again to resume.\n`);
      return 130;
    }
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`scored ${scoredNow} records in ${formatDuration(seconds)}${scoredNow > 0 ? ` (${(scoredNow / seconds).toFixed(2)} records/s)` : ''}; ${out} holds ${scored}.\n`);
    const cost = scoredNow > 0 ? (backend as ScoringBackend).costNote?.() : undefined;
    if (cost) process.stdout.write(`${cost}\n`);
    printSummary(seen, writer.existing);
    if (rejected > 0) process.stdout.write(`\n${rejected} ${rejected === 1 ? 'record' : 'records'} skipped, not scored (each named above with its reason).\n`);
    return 0;
  } finally {
    stopListening();
    lock.release();
    await backend.dispose();
  }
}
