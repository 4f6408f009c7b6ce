/**
 * The update-mask compares as WebAssembly SIMD kernels (no dependencies: the module's bytes
 * are assembled below from a readable instruction listing). Exports: `diff` and `count`
 * (bf16 bitwise, documented here), `f32rel` / `f32abs` (the η and abs rules on fp32 pairs,
 * evaluated in f64 lanes like the JS reference) and `f32vis` (bf16-visible changes of fp32
 * pairs); each is described at its builder below.
 *
 * `diff(a, b, groups, out)`: for `groups` blocks of 32 bf16 values at byte offsets `a` and
 * `b` of the kernel's memory, writes one 32-bit word per block at `out` (bit j set iff entry
 * j changed: bits differ and not both ±0) and returns the number of changed entries. It also
 * stores at address 0 a flag (1/0): did any entry of either side have an all-ones exponent
 * (NaN or ±Inf) — a superset test, (x | y) & 0x7f80 == 0x7f80 in some lane? Callers count
 * exactly in JS, only for flagged chunks (rare: weights below 2 in magnitude never flag).
 * Per 8 lanes: `i16x8.ne`, `v128.or`, `i16x8.ne 0x8000`, `v128.and`; two
 * `i8x16.narrow_i16x8_s` + `i8x16.bitmask` pack 32 lanes into a word. Branch-free; runs
 * ~3× faster than the best JS loop, so the compare hides behind the file reads.
 *
 * Callers zero the tail of both inputs up to a multiple of 32 entries: zero vs zero is
 * "unchanged" and finite, so padding never adds bits.
 */

/** Bytes the kernel reserves at the start of its memory (the flag lives at 0). */
export const KERNEL_SCRATCH = 64;

// --- a tiny assembler (also used by ./profile-kernel.ts) -------------------------------
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}
export function section(id: number, body: number[]): number[] { return [id, ...uleb(body.length), ...body]; }
export function vec(items: number[][]): number[] { return [...uleb(items.length), ...items.flat()]; }
export function str(s: string): number[] { return [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))]; }

/**
 * A function body under construction: `emit` appends opcodes and immediates (arrays are
 * spliced in), `g(i)` is `local.get i`. The kernels here are assembled with it.
 */
export function assembler(): { code: number[]; emit: (...xs: (number | number[])[]) => void; g: (i: number) => number[] } {
  const code: number[] = [];
  const emit = (...xs: (number | number[])[]): void => {
    for (const x of xs) { if (Array.isArray(x)) { for (const b of x) code.push(b); } else code.push(x); }
  };
  return { code, emit, g: (i: number): number[] => [LOCAL_GET, i] };
}

export const I32 = 0x7f, V128 = 0x7b;
// core opcodes
export const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22;
export const I32_CONST = 0x41, I32_ADD = 0x6a, I32_SUB = 0x6b, I32_OR = 0x72, I32_SHL = 0x74, I32_POPCNT = 0x69, I32_EQZ = 0x45;
export const I32_STORE = 0x36, BLOCK = 0x02, LOOP = 0x03, BR = 0x0c, BR_IF = 0x0d, END = 0x0b, VOID = 0x40;
// SIMD opcodes (prefix 0xfd + LEB128)
export const simd = (op: number): number[] => [0xfd, ...uleb(op)];
export const V128_LOAD = (offset: number): number[] => [...simd(0x00), 4, ...uleb(offset)];
export const V128_CONST_I16 = (v: number): number[] => [...simd(0x0c), ...Array.from({ length: 8 }, () => [v & 0xff, (v >>> 8) & 0xff]).flat()];
export const I16X8_EQ = simd(0x2d), I16X8_NE = simd(0x2e), V128_AND = simd(0x4e), V128_OR = simd(0x50);
export const V128_ANY_TRUE = simd(0x53), I8X16_BITMASK = simd(0x64), I8X16_NARROW_I16X8_S = simd(0x65);
export const I16X8_MAX_U = simd(0x99), I16X8_SUB = simd(0x91), I32X4_ADD = simd(0xae);
const I32X4_EXTADD_PAIRWISE_I16X8_U = simd(0x7f);
export const I32X4_EXTRACT_LANE = (lane: number): number[] => [...simd(0x1b), lane];
const SELECT = 0x1b, I32_LT_U = 0x49, F64 = 0x7c;
const V128_CONST_I32 = (v: number): number[] => [...simd(0x0c), ...Array.from({ length: 4 }, () => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]).flat()];
const I8X16_SHUFFLE = (lanes: number[]): number[] => [...simd(0x0d), ...lanes];
const F64X2_SPLAT = simd(0x14), F64X2_PROMOTE_LOW_F32X4 = simd(0x5f), F64X2_GT = simd(0x4a);
const F64X2_ABS = simd(0xec), F64X2_SUB = simd(0xf1), F64X2_MUL = simd(0xf2), F64X2_MAX = simd(0xf5);
const I32X4_MAX_U = simd(0xb9), I32X4_GE_U = simd(0x40), I16X8_NARROW_I32X4_S = simd(0x85);
const I32X4_SHR_U = simd(0xad), I32X4_NE = simd(0x38);

/** The module: imports memory `e.m`, exports `diff`. */
export function bf16DiffModuleBytes(): Uint8Array {
  // params: 0 a, 1 b, 2 groups, 3 out; locals: 4 cnt, 5 w (i32); 6 acc, 7 x, 8 y, 9..12 c0..c3 (v128)
  const A = 0, B = 1, N = 2, OUT = 3, CNT = 4, W = 5, ACC = 6, X = 7, Y = 8, C = 9;
  const { code, emit, g } = assembler();
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(N), I32_EQZ, BR_IF, 1);
  for (let k = 0; k < 4; k++) {
    emit(g(A), V128_LOAD(16 * k), LOCAL_SET, X);
    emit(g(B), V128_LOAD(16 * k), LOCAL_SET, Y);
    // changed = (x != y) & ((x | y) != 0x8000): x | y == 0x8000 only when both are ±0
    emit(g(X), g(Y), I16X8_NE, LOCAL_SET, C + k);
    emit(g(X), g(Y), V128_OR, LOCAL_TEE, X, V128_CONST_I16(0x8000), I16X8_NE, g(C + k));
    emit(V128_AND, LOCAL_SET, C + k);
    // acc = max_u(acc, (x | y) & 0x7f80) reaches 0x7f80 when some exponent is all ones (a
    // superset: two partial exponents can OR to all ones; callers then count exactly)
    emit(g(ACC), g(X), V128_CONST_I16(0x7f80), V128_AND, I16X8_MAX_U, LOCAL_SET, ACC);
  }
  emit(g(OUT));
  emit(g(C), g(C + 1), I8X16_NARROW_I16X8_S, I8X16_BITMASK);
  emit(g(C + 2), g(C + 3), I8X16_NARROW_I16X8_S, I8X16_BITMASK, I32_CONST, 16, I32_SHL, I32_OR);
  emit(LOCAL_TEE, W, I32_STORE, 2, 0);
  emit(g(CNT), g(W), I32_POPCNT, I32_ADD, LOCAL_SET, CNT);
  emit(g(A), I32_CONST, ...sleb(64), I32_ADD, LOCAL_SET, A);
  emit(g(B), I32_CONST, ...sleb(64), I32_ADD, LOCAL_SET, B);
  emit(g(OUT), I32_CONST, 4, I32_ADD, LOCAL_SET, OUT);
  emit(g(N), I32_CONST, 1, I32_SUB, LOCAL_SET, N);
  emit(BR, 0, END, END);
  // flag at address 0
  emit(I32_CONST, 0, g(ACC), V128_CONST_I16(0x7f80), I16X8_EQ, V128_ANY_TRUE, I32_STORE, 2, 0);
  emit(g(CNT), END);
  const body = [...vec([[2, I32], [7, V128]]), ...code];
  const countBody = countFunctionBody();
  const relBody = f32RuleFunctionBody(true), absBody = f32RuleFunctionBody(false), visBody = f32VisibleFunctionBody();
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([
      [0x60, ...vec([[I32], [I32], [I32], [I32]]), ...vec([[I32]])],
      [0x60, ...vec([[I32], [I32], [I32]]), ...vec([[I32]])],
      [0x60, ...vec([[I32], [I32], [I32], [I32], [F64]]), ...vec([[I32]])],
    ])),
    ...section(2, vec([[...str('e'), ...str('m'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([uleb(0), uleb(1), uleb(2), uleb(2), uleb(0)])),
    ...section(7, vec([
      [...str('diff'), 0x00, ...uleb(0)], [...str('count'), 0x00, ...uleb(1)],
      [...str('f32rel'), 0x00, ...uleb(2)], [...str('f32abs'), 0x00, ...uleb(3)], [...str('f32vis'), 0x00, ...uleb(4)],
    ])),
    ...section(10, vec([
      [...uleb(body.length), ...body], [...uleb(countBody.length), ...countBody],
      [...uleb(relBody.length), ...relBody], [...uleb(absBody.length), ...absBody], [...uleb(visBody.length), ...visBody],
    ])),
  ];
  return Uint8Array.from(bytes);
}

/**
 * `f32rel(a, b, groups, out, eta)` / `f32abs(a, b, groups, out, tol)`: the η rule
 * |v − u| > η·max(|u|, |v|) or the abs rule |v − u| > tol on fp32 pairs, evaluated in f64
 * lanes (each f32 promoted exactly), i.e. the same IEEE operations, in the same order, as
 * the JS reference `ruleWords`, so verdicts are identical. Writes one word per 32 entries and
 * returns the changed count; stores at address 0 whether any entry was NaN/Inf (callers then
 * redo that chunk with the exact JS rule, which decides non-finite entries by identity).
 */
function f32RuleFunctionBody(relative: boolean): number[] {
  // params: 0 a, 1 b, 2 groups, 3 out, 4 thr (f64); locals: 5 cnt, 6 w (i32);
  // 7 acc, 8 x, 9 y, 10 xl, 11 yl, 12 thr splat, 13 hi-swap tmp, 14..21 v0..v7 (v128)
  const A = 0, B = 1, N = 2, OUT = 3, THR = 4, CNT = 5, W = 6, ACC = 7, X = 8, Y = 9, XL = 10, YL = 11, TS = 12, V = 14;
  const { code, emit, g } = assembler();
  const HI = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
  const LOW_DWORDS = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
  /** Pushes the i64x2 verdict mask of the f64 pairs in locals XL, YL. */
  const verdict = (): void => {
    emit(g(YL), g(XL), F64X2_SUB, F64X2_ABS);
    if (relative) emit(g(XL), F64X2_ABS, g(YL), F64X2_ABS, F64X2_MAX, g(TS), F64X2_MUL);
    else emit(g(TS));
    emit(F64X2_GT);
  };
  emit(g(THR), F64X2_SPLAT, LOCAL_SET, TS);
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(N), I32_EQZ, BR_IF, 1);
  for (let k = 0; k < 8; k++) {
    emit(g(A), V128_LOAD(16 * k), LOCAL_SET, X);
    emit(g(B), V128_LOAD(16 * k), LOCAL_SET, Y);
    // non-finite: |bits| ≥ 0x7f800000 on either side (acc keeps the max)
    emit(g(ACC), g(X), V128_CONST_I32(0x7fffffff), V128_AND, I32X4_MAX_U, g(Y), V128_CONST_I32(0x7fffffff), V128_AND, I32X4_MAX_U, LOCAL_SET, ACC);
    emit(g(X), F64X2_PROMOTE_LOW_F32X4, LOCAL_SET, XL, g(Y), F64X2_PROMOTE_LOW_F32X4, LOCAL_SET, YL);
    verdict();
    emit(g(X), g(X), I8X16_SHUFFLE(HI), F64X2_PROMOTE_LOW_F32X4, LOCAL_SET, XL);
    emit(g(Y), g(Y), I8X16_SHUFFLE(HI), F64X2_PROMOTE_LOW_F32X4, LOCAL_SET, YL);
    verdict();
    emit(I8X16_SHUFFLE(LOW_DWORDS), LOCAL_SET, V + k);
  }
  emit(g(OUT));
  emit(g(V), g(V + 1), I16X8_NARROW_I32X4_S, g(V + 2), g(V + 3), I16X8_NARROW_I32X4_S, I8X16_NARROW_I16X8_S, I8X16_BITMASK);
  emit(g(V + 4), g(V + 5), I16X8_NARROW_I32X4_S, g(V + 6), g(V + 7), I16X8_NARROW_I32X4_S, I8X16_NARROW_I16X8_S, I8X16_BITMASK);
  emit(I32_CONST, 16, I32_SHL, I32_OR, LOCAL_TEE, W, I32_STORE, 2, 0);
  emit(g(CNT), g(W), I32_POPCNT, I32_ADD, LOCAL_SET, CNT);
  emit(g(A), I32_CONST, ...sleb(128), I32_ADD, LOCAL_SET, A);
  emit(g(B), I32_CONST, ...sleb(128), I32_ADD, LOCAL_SET, B);
  emit(g(OUT), I32_CONST, 4, I32_ADD, LOCAL_SET, OUT);
  emit(g(N), I32_CONST, 1, I32_SUB, LOCAL_SET, N);
  emit(BR, 0, END, END);
  emit(I32_CONST, 0, g(ACC), V128_CONST_I32(0x7f800000), I32X4_GE_U, V128_ANY_TRUE, I32_STORE, 2, 0);
  emit(g(CNT), END);
  return [...vec([[2, I32], [15, V128]]), ...code];
}

/**
 * `f32vis(a, b, groups, out)`: bf16-visible changes of fp32 pairs — both sides rounded to
 * bf16 (round to nearest even: (bits + 0x7fff + lsb) >> 16) and compared as bf16 codes
 * (±0 equal). NaN rounding is not special-cased: the flag at address 0 says a chunk had a
 * NaN/Inf, and callers redo it in JS.
 */
function f32VisibleFunctionBody(): number[] {
  // params: 0 a, 1 b, 2 groups, 3 out; locals: 4 cnt, 5 w (i32); 6 acc, 7 x, 8 y, 9..16 v0..v7
  const A = 0, B = 1, N = 2, OUT = 3, CNT = 4, W = 5, ACC = 6, X = 7, Y = 8, V = 9;
  const { code, emit, g } = assembler();
  /** Replaces local `l` (fp32 bits) by its bf16 code (RNE) in the low 16 bits of each lane. */
  const rne = (l: number): void => {
    emit(g(l), g(l), I32_CONST, 16, I32X4_SHR_U, V128_CONST_I32(1), V128_AND, I32X4_ADD);
    emit(V128_CONST_I32(0x7fff), I32X4_ADD, I32_CONST, 16, I32X4_SHR_U, LOCAL_SET, l);
  };
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(N), I32_EQZ, BR_IF, 1);
  for (let k = 0; k < 8; k++) {
    emit(g(A), V128_LOAD(16 * k), LOCAL_SET, X);
    emit(g(B), V128_LOAD(16 * k), LOCAL_SET, Y);
    emit(g(ACC), g(X), V128_CONST_I32(0x7fffffff), V128_AND, I32X4_MAX_U, g(Y), V128_CONST_I32(0x7fffffff), V128_AND, I32X4_MAX_U, LOCAL_SET, ACC);
    rne(X);
    rne(Y);
    // changed = (cx != cy) & ((cx | cy) != 0x8000)
    emit(g(X), g(Y), I32X4_NE, g(X), g(Y), V128_OR, V128_CONST_I32(0x8000), I32X4_NE, V128_AND, LOCAL_SET, V + k);
  }
  emit(g(OUT));
  emit(g(V), g(V + 1), I16X8_NARROW_I32X4_S, g(V + 2), g(V + 3), I16X8_NARROW_I32X4_S, I8X16_NARROW_I16X8_S, I8X16_BITMASK);
  emit(g(V + 4), g(V + 5), I16X8_NARROW_I32X4_S, g(V + 6), g(V + 7), I16X8_NARROW_I32X4_S, I8X16_NARROW_I16X8_S, I8X16_BITMASK);
  emit(I32_CONST, 16, I32_SHL, I32_OR, LOCAL_TEE, W, I32_STORE, 2, 0);
  emit(g(CNT), g(W), I32_POPCNT, I32_ADD, LOCAL_SET, CNT);
  emit(g(A), I32_CONST, ...sleb(128), I32_ADD, LOCAL_SET, A);
  emit(g(B), I32_CONST, ...sleb(128), I32_ADD, LOCAL_SET, B);
  emit(g(OUT), I32_CONST, 4, I32_ADD, LOCAL_SET, OUT);
  emit(g(N), I32_CONST, 1, I32_SUB, LOCAL_SET, N);
  emit(BR, 0, END, END);
  emit(I32_CONST, 0, g(ACC), V128_CONST_I32(0x7f800000), I32X4_GE_U, V128_ANY_TRUE, I32_STORE, 2, 0);
  emit(g(CNT), END);
  return [...vec([[2, I32], [11, V128]]), ...code];
}

/**
 * `count(a, b, groups)`: the changed count only (no mask words), for runs that need no
 * masks. Lanes accumulate in i16 (a changed lane is −1, subtracted), widened to i32 every
 * 4096 groups (≤ 16,384 per lane, no overflow); the NaN/Inf flag as in `diff`.
 */
function countFunctionBody(): number[] {
  // params: 0 a, 1 b, 2 groups; locals: 3 m (i32); 4 acc, 5 x, 6 y, 7 s (i16 counts), 8 t (i32 counts)
  const A = 0, B = 1, N = 2, M = 3, ACC = 4, X = 5, Y = 6, S = 7, T = 8;
  const { code, emit, g } = assembler();
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(N), I32_EQZ, BR_IF, 1);
  emit(g(N), I32_CONST, ...sleb(4096), g(N), I32_CONST, ...sleb(4096), I32_LT_U, SELECT, LOCAL_SET, M);
  emit(g(N), g(M), I32_SUB, LOCAL_SET, N);
  emit(LOOP, VOID);
  for (let k = 0; k < 4; k++) {
    emit(g(A), V128_LOAD(16 * k), LOCAL_SET, X);
    emit(g(B), V128_LOAD(16 * k), LOCAL_SET, Y);
    emit(g(S));
    emit(g(X), g(Y), I16X8_NE, g(X), g(Y), V128_OR, LOCAL_TEE, X, V128_CONST_I16(0x8000), I16X8_NE, V128_AND);
    emit(I16X8_SUB, LOCAL_SET, S);
    emit(g(ACC), g(X), V128_CONST_I16(0x7f80), V128_AND, I16X8_MAX_U, LOCAL_SET, ACC);
  }
  emit(g(A), I32_CONST, ...sleb(64), I32_ADD, LOCAL_SET, A);
  emit(g(B), I32_CONST, ...sleb(64), I32_ADD, LOCAL_SET, B);
  emit(g(M), I32_CONST, 1, I32_SUB, LOCAL_TEE, M, BR_IF, 0, END);
  emit(g(T), g(S), I32X4_EXTADD_PAIRWISE_I16X8_U, I32X4_ADD, LOCAL_SET, T);
  emit(V128_CONST_I16(0), LOCAL_SET, S);
  emit(BR, 0, END, END);
  emit(I32_CONST, 0, g(ACC), V128_CONST_I16(0x7f80), I16X8_EQ, V128_ANY_TRUE, I32_STORE, 2, 0);
  emit(g(T), I32X4_EXTRACT_LANE(0), g(T), I32X4_EXTRACT_LANE(1), I32_ADD, g(T), I32X4_EXTRACT_LANE(2), I32_ADD, g(T), I32X4_EXTRACT_LANE(3), I32_ADD);
  emit(END);
  return [...vec([[1, I32], [5, V128]]), ...code];
}

// The project compiles without the DOM lib, whose types declare WebAssembly; the few
// members used here are typed locally.
export interface WasmMemory { readonly buffer: ArrayBuffer }
export interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number }) => WasmMemory;
}
export const Wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | null | undefined;
/** The compiled module, or null where WebAssembly SIMD is unavailable (JS fallback). */
function module(): object | null {
  if (compiled === undefined) {
    try {
      const bytes = bf16DiffModuleBytes();
      compiled = Wasm.validate(bytes) ? new Wasm.Module(bytes) : null;
    } catch {
      compiled = null;
    }
  }
  return compiled ?? null;
}

export function wasmSimdAvailable(): boolean { return module() !== null && process.env.RLVR_NO_WASM !== '1'; }

/**
 * One kernel instance with its own memory: a bump allocator hands out 64-byte aligned
 * regions that callers use as read buffers (files are read straight into them, no copy).
 */
export class Bf16DiffKernel {
  readonly memory: WasmMemory;
  private readonly fn: ((a: number, b: number, groups: number, out: number) => number) | null;
  private readonly countFn: ((a: number, b: number, groups: number) => number) | null;
  private readonly f32rel: ((a: number, b: number, groups: number, out: number, thr: number) => number) | null;
  private readonly f32abs: ((a: number, b: number, groups: number, out: number, thr: number) => number) | null;
  private readonly f32vis: ((a: number, b: number, groups: number, out: number) => number) | null;
  private countWords: Uint32Array | null = null;
  private top = KERNEL_SCRATCH;

  constructor(bytes: number, useWasm = wasmSimdAvailable()) {
    const pages = Math.ceil((bytes + KERNEL_SCRATCH + 4096) / 65536);
    this.memory = new Wasm.Memory({ initial: pages });
    const m = useWasm ? module() : null;
    const exports = m ? new Wasm.Instance(m, { e: { m: this.memory } }).exports : null;
    this.fn = exports ? (exports.diff as (a: number, b: number, g: number, o: number) => number) : null;
    this.countFn = exports ? (exports.count as (a: number, b: number, g: number) => number) : null;
    type F32Rule = (a: number, b: number, g: number, o: number, thr: number) => number;
    this.f32rel = exports ? (exports.f32rel as F32Rule) : null;
    this.f32abs = exports ? (exports.f32abs as F32Rule) : null;
    this.f32vis = exports ? (exports.f32vis as (a: number, b: number, g: number, o: number) => number) : null;
  }

  get usesWasm(): boolean { return this.fn !== null; }

  /** Reserves `bytes` (rounded up to 64) and returns the byte offset. */
  alloc(bytes: number): number {
    const off = this.top;
    this.top += Math.ceil(bytes / 64) * 64;
    if (this.top > this.memory.buffer.byteLength) throw new RangeError('Bf16DiffKernel: out of reserved memory');
    return off;
  }

  bytes(off: number, len: number): Uint8Array { return new Uint8Array(this.memory.buffer, off, len); }

  /**
   * Diffs `n` bf16 entries at offsets `a`, `b` into words at `out` (ceil(n/32) words);
   * zero-pads both inputs to a multiple of 32 first (the regions must have that room).
   * Returns the changed count; `nonFiniteSeen()` then says whether any exponent was all ones.
   */
  diff(a: number, b: number, n: number, out: number): number {
    const groups = Math.ceil(n / 32);
    const padded = groups * 32;
    if (padded !== n) {
      new Uint16Array(this.memory.buffer, a, padded).fill(0, n);
      new Uint16Array(this.memory.buffer, b, padded).fill(0, n);
    }
    if (this.fn) return this.fn(a, b, groups, out);
    return diffJs(new Uint16Array(this.memory.buffer, a, padded), new Uint16Array(this.memory.buffer, b, padded),
      new Uint32Array(this.memory.buffer, out, groups), new Uint32Array(this.memory.buffer, 0, 1));
  }

  /** Like `diff` but only counts (no words written); `nonFiniteSeen()` as after `diff`. */
  count(a: number, b: number, n: number): number {
    const groups = Math.ceil(n / 32);
    const padded = groups * 32;
    if (padded !== n) {
      new Uint16Array(this.memory.buffer, a, padded).fill(0, n);
      new Uint16Array(this.memory.buffer, b, padded).fill(0, n);
    }
    if (this.countFn) return this.countFn(a, b, groups);
    if (!this.countWords || this.countWords.length < groups) this.countWords = new Uint32Array(groups);
    return diffJs(new Uint16Array(this.memory.buffer, a, padded), new Uint16Array(this.memory.buffer, b, padded),
      this.countWords.subarray(0, groups), new Uint32Array(this.memory.buffer, 0, 1));
  }

  /**
   * The η rule (`relative`, thr = η) or the abs rule (thr = tol) on `n` fp32 pairs at `a`,
   * `b` (regions with room for padding to 32), words at `out`; null without WebAssembly
   * (callers use the JS rule). After it, `nonFiniteSeen()` says whether the chunk must be
   * redone by the JS rule (non-finite entries are decided by identity there).
   */
  f32Rule(a: number, b: number, n: number, out: number, relative: boolean, thr: number): number | null {
    const fn = relative ? this.f32rel : this.f32abs;
    if (!fn) return null;
    const groups = Math.ceil(n / 32);
    const padded = groups * 32;
    if (padded !== n) {
      new Uint32Array(this.memory.buffer, a, padded).fill(0, n);
      new Uint32Array(this.memory.buffer, b, padded).fill(0, n);
    }
    return fn(a, b, groups, out, thr);
  }

  /** bf16-visible changes of `n` fp32 pairs (null without WebAssembly); see `f32Rule` for the flag. */
  f32Visible(a: number, b: number, n: number, out: number): number | null {
    if (!this.f32vis) return null;
    const groups = Math.ceil(n / 32);
    const padded = groups * 32;
    if (padded !== n) {
      new Uint32Array(this.memory.buffer, a, padded).fill(0, n);
      new Uint32Array(this.memory.buffer, b, padded).fill(0, n);
    }
    return this.f32vis(a, b, groups, out);
  }

  nonFiniteSeen(): boolean { return new Uint32Array(this.memory.buffer, 0, 1)[0] !== 0; }
}

/** The same kernel in branch-free JS (fallback and reference). */
export function diffJs(x: Uint16Array, y: Uint16Array, words: Uint32Array, flag: Uint32Array): number {
  let cnt = 0, acc = 0;
  for (let g = 0; g < words.length; g++) {
    let w = 0;
    const base = g * 32;
    for (let j = 0; j < 32; j++) {
      const a = x[base + j]!, b = y[base + j]!;
      // (a ^ b) !== 0 and ((a | b) & 0x7fff) !== 0, as 0/1 without branches
      const d = ((a ^ b) + 0xffff) >>> 16;
      const nz = (((a | b) & 0x7fff) + 0x7fff) >>> 15;
      w |= (d & nz) << j;
      acc |= (((a | b) & 0x7f80) + 0x80) & 0x8000; // the kernel's superset flag
    }
    words[g] = w;
    let v = w - ((w >>> 1) & 0x55555555);
    v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
    cnt += (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
  }
  flag[0] = acc !== 0 ? 1 : 0;
  return cnt;
}
