/**
 * Score Dataset on conversations with a model that has no chat template of its own (the bundled demo model has
 * none): the server says so in plain words (protocol NoChatTemplateData), and the user is offered the way out,
 * the built-in ChatML template, set for this workspace with one button.
 */
import * as vscode from 'vscode';
import type * as protocol from '../server/protocol';

export const USE_CHATML = 'Use ChatML';

/** Whether a request failed because the model has no chat template for these conversations. */
export function isNoChatTemplate(err: unknown): boolean {
  const data = (err as { data?: unknown } | undefined)?.data as Partial<protocol.NoChatTemplateData> | undefined;
  return data?.noChatTemplate === true;
}

/**
 * Shows the server's message with Use ChatML, which sets nuggets.template to chatml for the workspace (the user's
 * settings when no folder is open) and scores again. Resolves with whether the user took it.
 */
export async function offerChatml(message: string): Promise<boolean> {
  const choice = await vscode.window.showWarningMessage(`Nuggets: ${message}`, USE_CHATML);
  if (choice !== USE_CHATML) return false;
  const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await vscode.workspace.getConfiguration('nuggets').update('template', 'chatml', target);
  await vscode.commands.executeCommand('nuggets.scoreDataset');
  return true;
}
