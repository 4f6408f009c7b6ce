/**
 * Update masks as bitsets: 1 bit per entry, row-major (flat index i = row * cols + col),
 * bit i in word i >>> 5 at position i & 31. A 1.5B model's masks take ~190 MB, not 1.5 GB.
 * All set operations count with a branch-free popcount.
 */

export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export class BitMask {
  /** Number of entries. */
  readonly length: number;
  /** Tensor shape (rows, cols for 2-D; [n] for 1-D). */
  readonly shape: readonly number[];
  readonly words: Uint32Array;

  constructor(shape: readonly number[], words?: Uint32Array) {
    this.shape = [...shape];
    this.length = shape.reduce((a, b) => a * b, 1);
    const nw = Math.ceil(this.length / 32);
    if (words && words.length !== nw) throw new Error(`BitMask: ${words.length} words for ${this.length} bits`);
    this.words = words ?? new Uint32Array(nw);
  }

  get rows(): number { return this.shape.length >= 2 ? this.shape[0]! : 1; }
  get cols(): number { return this.shape.length >= 2 ? this.length / this.shape[0]! : this.length; }

  get(i: number): boolean { return ((this.words[i >>> 5]! >>> (i & 31)) & 1) === 1; }
  set(i: number, v = true): void {
    if (v) this.words[i >>> 5]! |= 1 << (i & 31);
    else this.words[i >>> 5]! &= ~(1 << (i & 31));
  }

  /** Number of set bits. */
  count(): number {
    let c = 0;
    const w = this.words;
    for (let i = 0; i < w.length; i++) c += popcount32(w[i]!);
    return c;
  }

  density(): number { return this.length === 0 ? 0 : this.count() / this.length; }

  private check(o: BitMask): void {
    if (o.length !== this.length) throw new Error(`BitMask: length ${o.length} vs ${this.length}`);
  }

  /** |A ∩ B| */
  andCount(o: BitMask): number {
    this.check(o);
    let c = 0;
    for (let i = 0; i < this.words.length; i++) c += popcount32(this.words[i]! & o.words[i]!);
    return c;
  }

  /** |A ∪ B| */
  orCount(o: BitMask): number {
    this.check(o);
    let c = 0;
    for (let i = 0; i < this.words.length; i++) c += popcount32(this.words[i]! | o.words[i]!);
    return c;
  }

  /** |A ∩ ¬B| */
  andNotCount(o: BitMask): number {
    this.check(o);
    let c = 0;
    for (let i = 0; i < this.words.length; i++) c += popcount32(this.words[i]! & ~o.words[i]!);
    return c;
  }

  and(o: BitMask): BitMask { this.check(o); const r = new BitMask(this.shape); for (let i = 0; i < r.words.length; i++) r.words[i] = this.words[i]! & o.words[i]!; return r; }
  or(o: BitMask): BitMask { this.check(o); const r = new BitMask(this.shape); for (let i = 0; i < r.words.length; i++) r.words[i] = this.words[i]! | o.words[i]!; return r; }
  andNot(o: BitMask): BitMask { this.check(o); const r = new BitMask(this.shape); for (let i = 0; i < r.words.length; i++) r.words[i] = this.words[i]! & ~o.words[i]!; return r; }

  /** Complement (padding bits past `length` stay 0). */
  not(): BitMask {
    const r = new BitMask(this.shape);
    for (let i = 0; i < r.words.length; i++) r.words[i] = ~this.words[i]!;
    const tail = this.length & 31;
    if (tail !== 0) r.words[r.words.length - 1]! &= (1 << tail) - 1;
    return r;
  }

  /** Per-row set-bit counts (row i = output feature i in PyTorch layout). */
  rowCounts(): Uint32Array {
    const rows = this.rows, cols = this.cols;
    const out = new Uint32Array(rows);
    for (let r = 0; r < rows; r++) out[r] = this.countRange(r * cols, (r + 1) * cols);
    return out;
  }

  /** Per-column set-bit counts. */
  colCounts(): Uint32Array {
    const rows = this.rows, cols = this.cols;
    const out = new Uint32Array(cols);
    for (let r = 0; r < rows; r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) {
        const i = base + c;
        out[c]! += (this.words[i >>> 5]! >>> (i & 31)) & 1;
      }
    }
    return out;
  }

  /** Set bits in flat index range [from, to). */
  countRange(from: number, to: number): number {
    let c = 0;
    let i = from;
    while (i < to && (i & 31) !== 0) { c += (this.words[i >>> 5]! >>> (i & 31)) & 1; i++; }
    while (i + 32 <= to) { c += popcount32(this.words[i >>> 5]!); i += 32; }
    while (i < to) { c += (this.words[i >>> 5]! >>> (i & 31)) & 1; i++; }
    return c;
  }

  /** One byte per entry (0/1), e.g. for a BOOL safetensors tensor. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = (this.words[i >>> 5]! >>> (i & 31)) & 1;
    return out;
  }

  static fromBytes(shape: readonly number[], bytes: Uint8Array): BitMask {
    const m = new BitMask(shape);
    for (let i = 0; i < m.length; i++) if (bytes[i] !== 0) m.words[i >>> 5]! |= 1 << (i & 31);
    return m;
  }

  static fromPredicate(shape: readonly number[], pred: (i: number) => boolean): BitMask {
    const m = new BitMask(shape);
    for (let i = 0; i < m.length; i++) if (pred(i)) m.words[i >>> 5]! |= 1 << (i & 31);
    return m;
  }

  equals(o: BitMask): boolean {
    if (o.length !== this.length) return false;
    for (let i = 0; i < this.words.length; i++) if (this.words[i] !== o.words[i]) return false;
    return true;
  }
}
