/**
 * The question before a long run: the server's probe estimate (costEstimateRequest) shown in a modal with a
 * button per faster way; the answer goes back to the server, and a faster way is applied once the run ends.
 */
import { basename } from 'node:path';
import * as vscode from 'vscode';
import * as protocol from '../server/protocol';
import { costQuestion } from './cost_words';
import type { Ctx } from './ctx';

export function registerCostQuestion(ctx: Ctx): vscode.Disposable {
  return ctx.client.onRequest(protocol.costEstimateRequest, async (estimate): Promise<protocol.CostEstimateAnswer> => {
    const name = basename(decodeURIComponent(new URL(estimate.uri).pathname));
    const question = costQuestion(estimate, name);
    ctx.log.info(`[run] ${name}: ${question.message.replace(/^Nuggets: /, '')} ${question.detail.split('\n')[1]}`);
    if (!estimate.ask) return { choice: 'continue' };
    const picked = await vscode.window.showWarningMessage(question.message, { modal: true, detail: question.detail }, ...question.buttons);
    return { choice: picked?.choice ?? 'cancel' };
  });
}

/** Applies the faster way the user chose at the question: the int8 variant (then scores again), or the anchor or model choice. */
export async function applyFasterWay(way: protocol.FasterWay): Promise<void> {
  switch (way) {
    case 'int8':
      await vscode.workspace.getConfiguration('nuggets').update('modelVariant', 'quantized', vscode.ConfigurationTarget.Workspace);
      await vscode.commands.executeCommand('nuggets.scoreDataset');
      return;
    case 'fewerAnchors':
      await vscode.commands.executeCommand('nuggets.chooseAnchors');
      return;
    case 'endpoint':
      await vscode.commands.executeCommand('nuggets.chooseModel');
  }
}
