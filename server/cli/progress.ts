/** A progress bar with rate and ETA on stderr; plain periodic lines when stderr is not a terminal. */
import { formatDuration } from '../protocol';

export class ProgressBar {
  private done = 0;
  private readonly started = Date.now();
  private lastPrinted = 0;

  constructor(private readonly total: number, private readonly unit: string, private readonly stream: NodeJS.WriteStream = process.stderr) {}

  tick(count = 1): void {
    this.done += count;
    const now = Date.now();
    const finished = this.done >= this.total;
    if (this.stream.isTTY) {
      if (finished || now - this.lastPrinted > 200) this.stream.write(`\r${this.line()}\x1b[K`);
    } else if (finished || now - this.lastPrinted > 15000) {
      this.stream.write(`${this.line()}\n`);
    } else {
      return;
    }
    this.lastPrinted = now;
  }

  finish(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }

  private line(): string {
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    const width = 28;
    const filled = this.total > 0 ? Math.round((width * this.done) / this.total) : width;
    const eta = rate > 0 ? formatDuration((this.total - this.done) / rate) : '?';
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total} ${this.unit}  ${rate.toFixed(2)}/s  ETA ${eta}`;
  }
}
