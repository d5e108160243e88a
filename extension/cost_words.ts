/**
 * What the question before a long run says (cost_question.ts): the estimate for the records after the probe, with
 * and without the exact early stop, and a button per faster way that applies. Without vscode, so that it can be
 * tested alone. The file name is the only text from outside, and it goes into a plain-text dialog.
 */
import { formatDuration, type CostEstimateInfo, type FasterWay } from '../server/protocol';

export interface CostQuestion {
  message: string;
  detail: string;
  /** In the order shown; a modal dialog adds its own Cancel. */
  buttons: Array<{ title: string; choice: 'continue' | FasterWay }>;
}

const WAY_TITLES: Record<FasterWay, string> = {
  int8: 'Use the int8 Variant',
  fewerAnchors: 'Choose Fewer Anchors',
  endpoint: 'Use a Serving Endpoint',
};

const WAY_DETAILS: Record<FasterWay, string> = {
  int8: 'the model\'s int8 variant (onnx/model_quantized.onnx) runs faster on a CPU, with scores close to fp32\'s',
  fewerAnchors: 'each anchor is one pass per record: half the anchors take about half the time',
  endpoint: 'a vLLM or SGLang server on a GPU scores many records at once',
};

export function costQuestion(estimate: CostEstimateInfo, fileName: string): CostQuestion {
  const { records, probed, anchors, fullSeconds, earlyStop } = estimate;
  const message = `Nuggets: scoring the other ${records} records of ${fileName} will take about ${formatDuration(fullSeconds)}.`;
  const lines = [
    `Estimated from the first ${probed} ${probed === 1 ? 'record' : 'records'} (kept), ${anchors} anchors each.`,
    `With the exact early stop at ${earlyStop.threshold} it would take about ${formatDuration(earlyStop.seconds)} `
      + `(${earlyStop.passesPerRecord.toFixed(1)} of ${anchors} anchors per record): from the command line, nuggets score --min-score ${earlyStop.threshold}.`,
    ...estimate.fasterWays.map((way) => `${WAY_TITLES[way]}: ${WAY_DETAILS[way]}.`),
  ];
  return {
    message,
    detail: lines.join('\n'),
    buttons: [{ title: 'Go On', choice: 'continue' }, ...estimate.fasterWays.map((way) => ({ title: WAY_TITLES[way], choice: way }))],
  };
}
