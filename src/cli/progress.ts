/**
 * Progress bars for long CLI work (cli-progress, on stderr), shown only when stdout is a terminal
 * and no JSON was asked for: piped or scripted output stays clean.
 */
import cliProgress from 'cli-progress';
import { formatBytes } from '../platform/replication/lsn.ts';

export interface Progress {
  /** Sets the current value (and total, when it is known or grew), with the label shown beside it. */
  update(value: number, total: number, label: string): void;
  stop(): void;
}

const SILENT: Progress = {
  update() {},
  stop() {},
};

/** Whether bars are drawn: a terminal on stdout, and not `--json`. */
export function progressWanted(json: boolean | undefined): boolean {
  return !json && process.stdout.isTTY;
}

/** A bar over `unit`s (`bytes` are shown as kB/MB/GB); silent when not wanted. */
export function progressBar(props: { json: boolean | undefined; title: string; unit: 'bytes' | 'objects' }): Progress {
  if (!progressWanted(props.json)) return SILENT;
  const show = (n: number) => (props.unit === 'bytes' ? formatBytes(n) : String(n));
  const bar = new cliProgress.SingleBar(
    {
      format: `${props.title} {bar} {percentage}% | {shown} | {label}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(value, total, label) {
      const bounded = Math.max(total, value, 1);
      const payload = { label, shown: `${show(value)} of ${show(bounded)}` };
      if (!started) {
        bar.start(bounded, value, payload);
        started = true;
        return;
      }
      bar.setTotal(bounded);
      bar.update(value, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
