// Rendering of pull/push progress lines: on a terminal a bar per layer (cli-progress), otherwise one plain
// `id: status` line per event, without the byte counts (as docker prints them when its output is not a terminal).

import type { Writable } from 'node:stream';

export interface ProgressLine {
  status: string;
  id?: string;
  current?: number;
  total?: number;
}

export interface Renderer {
  line(m: ProgressLine): void;
  done(): void;
}

const mb = (n: number) => (n < 1e6 ? `${(n / 1e3).toFixed(1)}kB` : `${(n / 1e6).toFixed(1)}MB`);

export async function progressRenderer(out: Writable & { isTTY?: boolean }): Promise<Renderer> {
  if (!out.isTTY) {
    return {
      line: (m) => {
        if (m.current !== undefined || !m.status) return;
        out.write(m.id ? `${m.id}: ${m.status}\n` : `${m.status}\n`);
      },
      done: () => {},
    };
  }
  const { MultiBar, Presets } = (await import('cli-progress')).default;
  const bars = new MultiBar(
    {
      stream: out as NodeJS.WriteStream,
      format: '{id}: {status} {bar} {amount}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
      forceRedraw: true,
      emptyOnZero: true,
    },
    Presets.shades_classic,
  );
  const byId = new Map<string, ReturnType<typeof bars.create>>();
  return {
    line: (m) => {
      if (!m.status) return;
      // Only layers (12 hex digits) get a bar; "v1: Pulling from x" and the closing lines are plain lines above.
      if (!m.id || !/^[0-9a-f]{12}$/.test(m.id)) {
        bars.log(m.id ? `${m.id}: ${m.status}\n` : `${m.status}\n`);
        return;
      }
      let b = byId.get(m.id);
      const total = m.total ?? 0;
      const payload = { id: m.id, status: m.status.padEnd(18), amount: m.current !== undefined ? `${mb(m.current)}/${mb(total)}` : '' };
      if (!b) {
        b = bars.create(total || 1, 0, payload);
        byId.set(m.id, b);
      }
      if (m.current !== undefined) {
        b.setTotal(total || 1);
        b.update(m.current, payload);
      } else {
        // Finished states fill the bar; others keep it where it is.
        const full = /complete|exists|Pushed|Mounted/.test(m.status);
        b.update(full ? b.getTotal() : b.getProgress() * b.getTotal(), payload);
      }
    },
    // stop() draws the bars once more but not what log() queued since the last redraw (the Digest and Status lines).
    done: () => {
      bars.update();
      bars.stop();
    },
  };
}
