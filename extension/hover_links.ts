/**
 * The extension's own links under a record's hover: "Show all anchor effects" (the dashboard on that record)
 * and, for the demo model, "Choose Model". The server's hover text comes from data and is rendered untrusted;
 * these links are made here, never from data, in a separate trusted block that may run only these commands.
 */
import * as vscode from 'vscode';
import type { RecordScore } from '../server/protocol';
import type { Ctx } from './ctx';

const LINKED_COMMANDS = ['nuggets.showRecordEffects', 'nuggets.chooseModel'];

export function hoverLinks(ctx: Ctx, document: vscode.TextDocument, position: vscode.Position): vscode.MarkdownString | undefined {
  const scores = ctx.scoresOf(document.uri);
  const record = scores && recordAtLine(scores.records, position.line);
  if (!scores || !record?.score) return undefined;
  const target = encodeURIComponent(JSON.stringify([{ uri: document.uri.toString(), index: record.index }]));
  const links = new vscode.MarkdownString(`[Show all anchor effects](command:nuggets.showRecordEffects?${target})`);
  if (scores.demoModel) links.appendMarkdown(' · [Choose Model](command:nuggets.chooseModel)');
  links.isTrusted = { enabledCommands: LINKED_COMMANDS };
  return links;
}

/** The first record whose lines include `line` (as the server answers hovers). */
function recordAtLine(records: readonly (RecordScore | undefined)[], line: number): RecordScore | undefined {
  return records.find((r) => r !== undefined && r.range.start.line <= line && r.range.end.line >= line);
}
