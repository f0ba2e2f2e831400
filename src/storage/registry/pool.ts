// Run async jobs with at most `n` at a time; the first failure stops new jobs from starting and is thrown once
// every started job has settled (so nothing is still writing when the caller cleans up).

export async function runLimited<T>(items: readonly T[], n: number, job: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        await job(items[i], i);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (failed) throw failed.e;
}
