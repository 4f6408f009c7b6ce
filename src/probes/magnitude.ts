/**
 * Magnitude structure of a base weight (Gate III and the magnitude-matched baselines of
 * SPEC §4): equal-count bins of |W0| with ties broken by flat index, and binades
 * floor(log2|w0|).
 */
import { type DType, decodeToFloat32, u16View } from '../io/dtype.js';

/**
 * Bin index (0 = smallest |w0|) of every entry, `numBins` equal-count bins: entries are
 * ranked by (|w0|, flat index) and bin = floor(rank · numBins / n). Exact and O(n) for bf16
 * (counting sort over the 15-bit magnitude pattern, which is monotone in |w|); other dtypes
 * sort. NaN magnitudes rank last.
 */
export function magnitudeBins(bytes: Uint8Array, dtype: DType, numBins = 20): Uint8Array {
  if (numBins < 1 || numBins > 255) throw new RangeError('numBins must be in 1..255');
  const n = dtype === 'BF16' ? bytes.byteLength >>> 1 : decodeToFloat32(bytes, dtype).length;
  const bins = new Uint8Array(n);
  if (n === 0) return bins;
  if (dtype === 'BF16') {
    const h = u16View(bytes);
    const count = new Float64Array(32769);
    for (let i = 0; i < n; i++) count[keyBf16(h[i]!) + 1]!++;
    for (let k = 1; k < count.length; k++) count[k]! += count[k - 1]!; // count[k] = #entries with key < k
    for (let i = 0; i < n; i++) {
      const rank = count[keyBf16(h[i]!)]!++;
      bins[i] = Math.floor((rank * numBins) / n);
    }
    return bins;
  }
  const v = decodeToFloat32(bytes, dtype);
  const abs = new Float32Array(n);
  for (let i = 0; i < n; i++) { const a = Math.abs(v[i]!); abs[i] = Number.isNaN(a) ? Infinity : a; }
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => abs[a]! - abs[b]! || a - b);
  for (let r = 0; r < n; r++) bins[idx[r]!] = Math.floor((r * numBins) / n);
  return bins;
}

/** Sort key of a bf16 pattern by magnitude: the 15 low bits, NaN patterns last. */
function keyBf16(x: number): number {
  const a = x & 0x7fff;
  return a > 0x7f80 ? 0x7fff : a;
}

/** floor(log2|w|) of a value; -Infinity for 0, NaN for non-finite. */
export function binade(w: number): number {
  if (!Number.isFinite(w)) return NaN;
  if (w === 0) return -Infinity;
  let e = Math.floor(Math.log2(Math.abs(w)));
  // guard against log2 rounding at exact powers of two
  if (2 ** e > Math.abs(w)) e--;
  else if (2 ** (e + 1) <= Math.abs(w)) e++;
  return e;
}
