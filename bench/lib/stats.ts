// Order statistics of a sample. Quantiles interpolate linearly between order statistics (type 7, as R and numpy),
// so a median of an even count is the mean of the middle two and nothing is rounded in anyone's favour.

export interface Summary {
  n: number;
  median: number;
  p90: number;
  q1: number;
  q3: number;
  iqr: number;
  mean: number;
  stddev: number;
  min: number;
  max: number;
}

export function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const mean = n ? s.reduce((a, b) => a + b, 0) / n : NaN;
  const variance = n > 1 ? s.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  const q1 = quantile(s, 0.25);
  const q3 = quantile(s, 0.75);
  return { n, median: quantile(s, 0.5), p90: quantile(s, 0.9), q1, q3, iqr: q3 - q1, mean, stddev: Math.sqrt(variance), min: s[0], max: s[n - 1] };
}

export const round = (x: number, digits = 2) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/**
 * Least squares y ≈ a + b·x + c·t: the slope b over x (e.g. containers) with time t as a second regressor, so a
 * steady drift of y over time (other users of the host) is not taken for an effect of x. Returns b and its standard error.
 */
export function slopeWithDrift(xs: number[], ts: number[], ys: number[]): { slope: number; se: number } {
  const n = xs.length;
  const X = xs.map((x, i) => [1, x, ts[i]]);
  const xtx = [0, 1, 2].map((r) => [0, 1, 2].map((c) => X.reduce((a, row) => a + row[r] * row[c], 0)));
  const xty = [0, 1, 2].map((r) => X.reduce((a, row, i) => a + row[r] * ys[i], 0));
  const inv = invert3(xtx);
  const beta = inv.map((row) => row.reduce((a, v, j) => a + v * xty[j], 0));
  const rss = X.reduce((a, row, i) => a + (ys[i] - (beta[0] + beta[1] * row[1] + beta[2] * row[2])) ** 2, 0);
  return { slope: beta[1], se: n > 3 ? Math.sqrt((rss / (n - 3)) * inv[1][1]) : NaN };
}

function invert3(m: number[][]): number[][] {
  const [[a, b, c], [d, e, f], [g, h, i]] = m;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  const adj = [
    [A, -(b * i - c * h), b * f - c * e],
    [B, a * i - c * g, -(a * f - c * d)],
    [C, -(a * h - b * g), a * e - b * d],
  ];
  return adj.map((row) => row.map((v) => v / det));
}
