// VM isolation's section of BENCHMARKS.md, from bench/results/vm.json alone (written by `npm run bench:vm`).

export interface VmResults {
  when: string;
  n: number;
  loadAverage1m: number;
  accel: string;
  /** TCG's code cache of the VMs measured, MiB. */
  tcgCacheMiB?: number;
  startMs: { coldBoot: number; templateRestore: number; ratio: number };
  runRmMs: { vm: number; process: number; docker: number | null };
  /** QEMU's CPU time (utime + stime) per `run --rm --isolation vm busybox true`: the guest's work under TCG. */
  vmRunQemuCpuMs?: number;
  /** A minute after the starts: the guest settled, its code cache trimmed. */
  idleMemoryMiBPerContainer: { vm: { pssMiB: number; rssMiB: number }; process: { pssMiB: number; rssMiB: number } };
  /** 3 s after the starts (absent from results before it was measured). */
  startedMemoryMiBPerContainer?: { vm: { pssMiB: number; rssMiB: number }; process: { pssMiB: number; rssMiB: number } };
  /** The spare QEMU the daemon keeps launched for the next VM (docs/vm.md), once per daemon, not per container. */
  spareMemoryMiB?: { pssMiB: number; rssMiB: number };
}

const ms = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(0)} ms`);

export function vmSection(r: VmResults): string {
  return [
    '<!-- vm:start -->',
    '## VM isolation (`npm run bench:vm`)',
    '',
    `Run ${r.when.slice(0, 10)} under ${r.accel.toUpperCase()}${r.tcgCacheMiB ? ` (code cache ${r.tcgCacheMiB} MiB)` : ''}, median of ${r.n}, load average ${r.loadAverage1m.toFixed(1)} on 2 shared cores:`,
    'utility VM start to its agent answering (QEMU and the agent only), `run --rm busybox true` end to end through the CLI',
    '(vm, process and docker in the same run, docker a dockerd the bench starts; n/a: it did not start), and host memory per idle `sleep` container (PSS of',
    'QEMU, or of conmon and the container\'s processes; 4 of each at once, so the template\'s shared pages count a quarter each), a minute after',
    'their start: by then the guest has settled and the daemon has given back the dead part of its TCG code cache (docs/vm.md); 3 s after the start, beside it.',
    'The daemon keeps one clone of the template restored ahead for the next VM (a spare, docs/vm.md): the vm `run --rm`s after the first start in one.',
    'Targets (issue #13, TCG): restore ≥ 10× faster than a cold boot, `run --rm` ≤ 1.0 s, ≤ 40 MiB per idle VM.',
    '',
    '| figure | value |',
    '|---|---|',
    `| VM start to agent: cold boot / template restore | ${ms(r.startMs.coldBoot)} / ${ms(r.startMs.templateRestore)} (${r.startMs.ratio.toFixed(1)}×) |`,
    `| run --rm busybox true: vm / process / docker | ${ms(r.runRmMs.vm)} / ${ms(r.runRmMs.process)} / ${ms(r.runRmMs.docker)} |`,
    ...(r.vmRunQemuCpuMs !== undefined ? [`| QEMU CPU time per vm run --rm (what the load moves least) | ${ms(r.vmRunQemuCpuMs)} |`] : []),
    ...(['vm', 'process'] as const).map((k) => {
      const m = (x: { pssMiB: number; rssMiB: number }) => `${x.pssMiB.toFixed(1)} MiB (${x.rssMiB.toFixed(1)})`;
      const s = r.startedMemoryMiBPerContainer?.[k];
      return `| host memory per idle container, PSS (RSS): ${k} | ${m(r.idleMemoryMiBPerContainer[k])}${s ? `; 3 s after its start ${m(s)}` : ''} |`;
    }),
    ...(r.spareMemoryMiB ? [`| host memory of the spare waiting for the next VM (one per daemon, \`--vm-spares\`), PSS (RSS) | ${r.spareMemoryMiB.pssMiB.toFixed(1)} MiB (${r.spareMemoryMiB.rssMiB.toFixed(1)}) |`] : []),
    '<!-- vm:end -->',
  ].join('\n');
}

export function withVmSection(md: string, section: string): string {
  const start = md.indexOf('<!-- vm:start -->');
  const end = md.indexOf('<!-- vm:end -->');
  if (start >= 0 && end > start) return md.slice(0, start) + section + md.slice(end + '<!-- vm:end -->'.length);
  return md.replace(/\n*$/, '\n\n') + section + '\n';
}
