/**
 * The locality probe's fused kernel (WebAssembly SIMD, assembled here like ./bf16-kernel.ts):
 * one pass over a chunk of a bf16 base tensor and the same chunk of R bf16 tuned tensors
 * (R ≤ 8) that both
 *   - writes the R update masks (the bitwise η fast path, exactly `diff` of bf16-kernel.ts:
 *     bits differ and not both ±0) and the NaN/Inf superset flag, and
 *   - counts every entry into a joint histogram over (15-bit magnitude pattern of w0, run
 *     mask), the run mask being the R bits "changed by run r".
 * Everything the locality probe needs per tensor follows from that histogram with no further
 * per-entry pass: the pattern histograms behind the equal-count |W0| bins and the per-binade
 * change rates, each run's changed count, every pairwise |A∩B|, and the consensus histogram
 * (entries changed by exactly k runs). The per-entry work is two SIMD ops per run plus one
 * scalar increment, so the accounting costs about as much as one more compare.
 *
 * `prof(a, groups, out, hist)`: for `groups` blocks of 32 entries at byte offsets a (base)
 * and a + (r+1)·region (run r; region and stride are baked into the module): the mask word
 * of run r for block g goes to out + r·stride + 4g; hist[(pattern << R) | runmask] (u32 cells at `hist`) is incremented
 * per entry. At address 0 it stores the NaN/Inf flag (a superset test: set when some entry has an
 * all-ones exponent, and possibly when values ≥ 2 occur; callers recount such chunks exactly), at 16 and 32 the lane-wise
 * max and min of the 15-bit patterns seen (so callers scan only that key range).
 */
import {
  BLOCK, BR, BR_IF, END, I16X8_EQ, I16X8_MAX_U, I16X8_NE, I32, I32X4_ADD, I32X4_EXTRACT_LANE, I32_ADD, I32_CONST, I32_EQZ, I32_OR, I32_SHL,
  I32_STORE, I32_SUB, I8X16_BITMASK, I8X16_NARROW_I16X8_S, KERNEL_SCRATCH, LOCAL_SET, LOCAL_TEE, LOOP, V128, V128_AND,
  V128_ANY_TRUE, V128_CONST_I16, V128_LOAD, V128_OR, VOID, Wasm, type WasmMemory, assembler, section, simd, sleb, str, uleb, vec,
} from './bf16-kernel.js';

const I32_LOAD = 0x28, I32_STORE16 = 0x3b, I32_AND = 0x71, I32_SHR_U = 0x76;
const MEMORY_COPY = [0xfc, 10, 0x00, 0x00];
const I32_EQ = 0x46, I32_GE_U = 0x4f, I32_CTZ = 0x68;
const I16X8_SPLAT = simd(0x10), I16X8_BITMASK = simd(0x84);
const V128_STORE = (offset: number): number[] => [...simd(0x0b), 4, ...uleb(offset)];
const I16X8_MIN_U = simd(0x97);
const I32X4_EXTEND_LOW_I16X8_U = simd(0xa9), I32X4_EXTEND_HIGH_I16X8_U = simd(0xaa), I32X4_SHL = simd(0xab);
const I16X8_EXTEND_LOW_I8X16_U = simd(0x89), I16X8_EXTEND_HIGH_I8X16_U = simd(0x8a);
const V128_CONST_I8 = (v: number): number[] => [...simd(0x0c), ...Array.from({ length: 16 }, () => v & 0xff)];

/** Mask strides (bytes between two runs' whole-tensor masks) are multiples of this: a module variant per size class. */
const MASK_STRIDE_UNIT = 65536;

/** Largest run count the fused kernel takes (the run mask is one byte; the histogram 2^R cells per pattern). */
export const PROFILE_MAX_RUNS = 8;
const PATTERNS = 1 << 15;

/** Bytes of straddler snapshots one tensor may take (reserved after its masks; untouched pages cost nothing). */
export const SNAPSHOT_BYTES = 32 << 20;
/** Spans whose snapshot copies run in WebAssembly (more, e.g. from a library caller's 1000 bins, copy in JS). */
const MAX_SNAPSHOT_SPANS = 1024;

/** Module bytes of the fused kernel for R runs (export `prof`, memory imported as `e.m`). */
export function profileModuleBytes(R: number, region: number, stride: number): Uint8Array {
  if (!Number.isInteger(R) || R < 1 || R > PROFILE_MAX_RUNS) throw new RangeError(`profile kernel: 1..${PROFILE_MAX_RUNS} runs`);
  // The tuned regions lie at t + r·region and run r's words at out + r·stride: both are
  // baked into the load/store offsets, so only a, t, out and hist live in registers (with
  // R = 8, per-run pointers would need more general registers than x64 has).
  const A = 0, TT = 1, N = 2, OUT = 3, HIST = 4;
  const ADDR = 5; // i32 local: address temp
  const V = ADDR + 1; // v128 locals
  const X = V, Y = V + 2, C = V + 3, RM = V + 5, NR = V + 6, ACC = V + 7, KMAX = V + 8, KMIN = V + 9, LO = V + 10;
  const { code, emit, g } = assembler();
  emit(V128_CONST_I16(0xffff), LOCAL_SET, KMIN);
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(N), I32_EQZ, BR_IF, 1);
  // Two halves of 16 entries (two vectors) each, so the live vectors fit the 16 SIMD registers.
  for (let hp = 0; hp < 2; hp++) {
    for (let k = 0; k < 2; k++) {
      emit(g(A), V128_LOAD(32 * hp + 16 * k), LOCAL_TEE, X + k, V128_CONST_I16(0x7fff), V128_AND, LOCAL_TEE, Y);
      emit(g(KMAX), I16X8_MAX_U, LOCAL_SET, KMAX, g(KMIN), g(Y), I16X8_MIN_U, LOCAL_SET, KMIN);
    }
    for (let r = 0; r < R; r++) {
      for (let k = 0; k < 2; k++) {
        emit(g(TT), V128_LOAD(r * region + 32 * hp + 16 * k), LOCAL_SET, Y);
        // changed = (x != y) & ((x | y) != 0x8000), as in bf16-kernel's diff
        emit(g(X + k), g(Y), I16X8_NE, g(X + k), g(Y), V128_OR, LOCAL_TEE, Y, V128_CONST_I16(0x8000), I16X8_NE, V128_AND, LOCAL_SET, C + k);
        // NaN/Inf prefilter: OR of every base|tuned code of the lane (one op per vector);
        // its exponent field is all ones whenever an entry's is, and otherwise only when
        // codes with |w| ≥ 2 and others OR to 0xff (then the caller just recounts exactly)
        emit(g(ACC), g(Y), V128_OR, LOCAL_SET, ACC);
      }
      // the 16 verdicts as bytes (0xff / 0): their bitmask is the half word, and bit r of the
      // run mask of all 16 entries at once (RM, i8 lanes)
      emit(g(OUT), g(C), g(C + 1), I8X16_NARROW_I16X8_S, LOCAL_TEE, NR, I8X16_BITMASK, I32_STORE16, 1, ...uleb(r * stride + 2 * hp));
      if (r === 0) emit(g(NR), V128_CONST_I8(1), V128_AND, LOCAL_SET, RM);
      else emit(g(RM), g(NR), V128_CONST_I8(1 << r), V128_AND, V128_OR, LOCAL_SET, RM);
    }
    // hist[(pattern << R) | runmask]++ per entry; cell byte offsets (pattern << (R+2)) | (runmask << 2)
    for (let k = 0; k < 2; k++) {
      for (const extend of [I32X4_EXTEND_LOW_I16X8_U, I32X4_EXTEND_HIGH_I16X8_U]) {
        emit(g(X + k), V128_CONST_I16(0x7fff), V128_AND, extend, I32_CONST, ...sleb(R + 2), I32X4_SHL);
        emit(g(RM), k === 0 ? I16X8_EXTEND_LOW_I8X16_U : I16X8_EXTEND_HIGH_I8X16_U, extend, I32_CONST, 2, I32X4_SHL, V128_OR, LOCAL_SET, LO);
        for (let lane = 0; lane < 4; lane++) {
          emit(g(HIST), g(LO), I32X4_EXTRACT_LANE(lane), I32_ADD, LOCAL_TEE, ADDR);
          emit(g(ADDR), I32_LOAD, 2, 0, I32_CONST, 1, I32_ADD, I32_STORE, 2, 0);
        }
      }
    }
  }
  emit(g(OUT), I32_CONST, 4, I32_ADD, LOCAL_SET, OUT);
  emit(g(TT), I32_CONST, ...sleb(64), I32_ADD, LOCAL_SET, TT);
  emit(g(A), I32_CONST, ...sleb(64), I32_ADD, LOCAL_SET, A);
  emit(g(N), I32_CONST, 1, I32_SUB, LOCAL_SET, N);
  emit(BR, 0, END, END);
  emit(I32_CONST, 0, g(ACC), V128_CONST_I16(0x7f80), V128_AND, V128_CONST_I16(0x7f80), I16X8_EQ, V128_ANY_TRUE, I32_STORE, 2, 0);
  emit(I32_CONST, 0, g(KMAX), V128_STORE(16), I32_CONST, 0, g(KMIN), V128_STORE(32));
  emit(END);
  const body = [...vec([[1, I32], [11, V128]]), ...code];
  const hist = histFunctionBody();
  const fns: number[][] = [body, hist, snapFunctionBody(), walkFunctionBody(R, stride)];
  const types = [uleb(0), uleb(1), uleb(1), uleb(3)];
  const exports = [[...str('prof'), 0x00, ...uleb(0)], [...str('hist'), 0x00, ...uleb(1)], [...str('snap'), 0x00, ...uleb(2)], [...str('walk'), 0x00, ...uleb(3)]];
  if (R >= 2) {
    fns.push(takeFunctionBody(R));
    types.push(uleb(2));
    exports.push([...str('take'), 0x00, ...uleb(4)]);
  }
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([
      [0x60, ...vec([[I32], [I32], [I32], [I32], [I32]]), ...vec([])],
      [0x60, ...vec([[I32], [I32], [I32]]), ...vec([])],
      [0x60, ...vec([[I32], [I32], [I32], [I32]]), ...vec([])],
      [0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32], [I32]]), ...vec([[I32]])],
    ])),
    ...section(2, vec([[...str('e'), ...str('m'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec(types)),
    ...section(7, vec(exports)),
    ...section(10, vec(fns.map((f) => [...uleb(f.length), ...f]))),
  ]);
}

/**
 * `snap(desc, spans, dst)`: for each of `spans` descriptors (u32 src, len, off at desc + 12i),
 * copies len bytes from src to dst + off (memory.copy): one snapshot of the straddlers'
 * histogram rows per call, where a JS typed-array copy per span cost ~0.3 µs of call overhead each.
 */
function snapFunctionBody(): number[] {
  const DESC = 0, N = 1, DST = 2;
  const { code, emit, g } = assembler();
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(N), I32_EQZ, BR_IF, 1);
  emit(g(DST), g(DESC), I32_LOAD, 2, 8, I32_ADD, g(DESC), I32_LOAD, 2, 0, g(DESC), I32_LOAD, 2, 4, MEMORY_COPY);
  emit(g(DESC), I32_CONST, 12, I32_ADD, LOCAL_SET, DESC);
  emit(g(N), I32_CONST, 1, I32_SUB, LOCAL_SET, N);
  emit(BR, 0, END, END);
  emit(END);
  return [...vec([]), ...code];
}

/**
 * `walk(src, n, first, pattern, need, masks, cum) → found`: steps through entries first,
 * first + 1, … (n of them, a multiple of 8, at src) and, for each whose 15-bit pattern is
 * `pattern`, adds one to u32 cell `cum + 4·runmask` (its run mask read from the R masks at
 * `masks`, run r at masks + r·stride), until `need` were found; returns how many were. Eight
 * entries per compare: the straddler walk after the pass, which V8's Uint16Array indexOf did
 * one entry at a time (twice: +w and −w).
 */
function walkFunctionBody(R: number, stride: number): number[] {
  const SRC = 0, N = 1, FIRST = 2, PAT = 3, NEED = 4, MASKS = 5, CUM = 6;
  const I = 7, SEEN = 8, BITS = 9, E = 10, W = 11, A = 12, PV = 13;
  const { code, emit, g } = assembler();
  emit(g(PAT), I16X8_SPLAT, LOCAL_SET, PV);
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(I), g(N), I32_GE_U, BR_IF, 1);
  emit(g(SRC), g(I), I32_CONST, 1, I32_SHL, I32_ADD, V128_LOAD(0), V128_CONST_I16(0x7fff), V128_AND, g(PV), I16X8_EQ, I16X8_BITMASK, LOCAL_SET, BITS);
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(BITS), I32_EQZ, BR_IF, 1);
  emit(g(FIRST), g(I), I32_ADD, g(BITS), I32_CTZ, I32_ADD, LOCAL_SET, E);
  emit(g(E), I32_CONST, 5, I32_SHR_U, I32_CONST, 2, I32_SHL, g(MASKS), I32_ADD, LOCAL_SET, W);
  for (let r = 0; r < R; r++) {
    // i32.shr_u takes its count mod 32: the bit of entry E in its word
    emit(g(W), I32_LOAD, 2, ...uleb(r * stride), g(E), I32_SHR_U, I32_CONST, 1, I32_AND);
    if (r > 0) emit(I32_CONST, r, I32_SHL, I32_OR);
  }
  emit(I32_CONST, 2, I32_SHL, g(CUM), I32_ADD, LOCAL_TEE, A, g(A), I32_LOAD, 2, 0, I32_CONST, 1, I32_ADD, I32_STORE, 2, 0);
  emit(g(SEEN), I32_CONST, 1, I32_ADD, LOCAL_TEE, SEEN, g(NEED), I32_EQ, BR_IF, 3);
  emit(g(BITS), g(BITS), I32_CONST, 1, I32_SUB, I32_AND, LOCAL_SET, BITS);
  emit(BR, 0, END, END);
  emit(g(I), I32_CONST, 8, I32_ADD, LOCAL_SET, I);
  emit(BR, 0, END, END);
  emit(g(SEEN), END);
  return [...vec([[6, I32], [1, V128]]), ...code];
}

/**
 * `take(row, key, keys, out)` (R ≥ 2): reads and clears the 2^R run-mask cells of `keys`
 * consecutive patterns from `key` on (row = the address of key's first cell) and writes, per
 * pattern, its total to out + 4·key and its changed count for run r to out + (r+1)·2^17 + 4·key;
 * the cells summed over those patterns (entries per run mask) go to out + (R+1)·2^17 as u32.
 * Four cells per vector: run masks 4j..4j+3 differ in bits 0 and 1 (lanes) and share bits
 * 2.. (j's bits), so run r ≥ 2 sums whole vectors and runs 0, 1 take lanes of the total.
 * What JS did per cell with branches and a bit loop is ~2^R/4 vector adds per pattern here.
 */
function takeFunctionBody(R: number): number[] {
  const ROW = 0, KEY = 1, N = 2, OUT = 3;
  const J = 2 ** R / 4;
  const V = 4, S = 5, ACC = 6; // v128 locals: the cell vector, the pattern's sum, runs 2..R−1
  const PR = ACC + (R - 2); // J accumulators of the cells per run mask
  const { code, emit, g } = assembler();
  const hsum = (v: number): number[] => [g(v), I32X4_EXTRACT_LANE(0), g(v), I32X4_EXTRACT_LANE(1), I32_ADD, g(v), I32X4_EXTRACT_LANE(2), I32_ADD, g(v), I32X4_EXTRACT_LANE(3), I32_ADD].flat();
  const zero = V128_CONST_I16(0);
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(N), I32_EQZ, BR_IF, 1);
  emit(zero, LOCAL_SET, S);
  for (let r = 2; r < R; r++) emit(zero, LOCAL_SET, ACC + r - 2);
  for (let j = 0; j < J; j++) {
    emit(g(ROW), V128_LOAD(16 * j), LOCAL_SET, V);
    emit(g(ROW), zero, V128_STORE(16 * j));
    emit(g(S), g(V), I32X4_ADD, LOCAL_SET, S);
    emit(g(PR + j), g(V), I32X4_ADD, LOCAL_SET, PR + j);
    for (let r = 2; r < R; r++) if ((j >>> (r - 2)) & 1) emit(g(ACC + r - 2), g(V), I32X4_ADD, LOCAL_SET, ACC + r - 2);
  }
  // out address of this pattern: out + 4·key
  emit(g(OUT), g(KEY), I32_CONST, 2, I32_SHL, I32_ADD, LOCAL_SET, OUT_ADDR(R));
  emit(g(OUT_ADDR(R)), hsum(S), I32_STORE, 2, 0);
  emit(g(OUT_ADDR(R)), g(S), I32X4_EXTRACT_LANE(1), g(S), I32X4_EXTRACT_LANE(3), I32_ADD, I32_STORE, 2, ...uleb(PATTERNS * 4));
  emit(g(OUT_ADDR(R)), g(S), I32X4_EXTRACT_LANE(2), g(S), I32X4_EXTRACT_LANE(3), I32_ADD, I32_STORE, 2, ...uleb(2 * PATTERNS * 4));
  for (let r = 2; r < R; r++) emit(g(OUT_ADDR(R)), hsum(ACC + r - 2), I32_STORE, 2, ...uleb((r + 1) * PATTERNS * 4));
  emit(g(ROW), I32_CONST, ...sleb(16 * J), I32_ADD, LOCAL_SET, ROW);
  emit(g(KEY), I32_CONST, 1, I32_ADD, LOCAL_SET, KEY);
  emit(g(N), I32_CONST, 1, I32_SUB, LOCAL_SET, N);
  emit(BR, 0, END, END);
  for (let j = 0; j < J; j++) emit(g(OUT), g(PR + j), V128_STORE((R + 1) * PATTERNS * 4 + 16 * j));
  emit(END);
  // locals after the 4 params: v128 × (2 + (R − 2) + J), then one i32 (the out address)
  return [...vec([[2 + (R - 2) + J, V128], [1, I32]]), ...code];
}
/** Index of take's i32 address local (after its v128 locals). */
function OUT_ADDR(R: number): number { return 4 + 2 + (R - 2) + 2 ** R / 4; }

/**
 * `hist(src, pairs, out)`: the 15-bit pattern histogram of 2·pairs bf16 entries at `src`,
 * even entries into u32 cells at `out`, odd ones at out + 2^17 (two tables, so runs of one
 * pattern do not wait on their own previous increment); callers add the two.
 */
function histFunctionBody(): number[] {
  const SRC = 0, N = 1, OUT = 2, X = 3, AD = 4;
  const { code, emit, g } = assembler();
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(N), I32_EQZ, BR_IF, 1);
  emit(g(SRC), I32_LOAD, 2, 0, LOCAL_SET, X);
  // low half: entry 2i; high half: entry 2i + 1 (little-endian u16 pair in one u32)
  emit(g(OUT), g(X), I32_CONST, ...sleb(0x7fff), I32_AND, I32_CONST, 2, I32_SHL, I32_ADD, LOCAL_TEE, AD);
  emit(g(AD), I32_LOAD, 2, 0, I32_CONST, 1, I32_ADD, I32_STORE, 2, 0);
  emit(g(OUT), g(X), I32_CONST, 16, I32_SHR_U, I32_CONST, ...sleb(0x7fff), I32_AND, I32_CONST, 2, I32_SHL, I32_ADD, LOCAL_TEE, AD);
  emit(g(AD), I32_LOAD, 2, ...uleb(PATTERNS * 4), I32_CONST, 1, I32_ADD, I32_STORE, 2, ...uleb(PATTERNS * 4));
  emit(g(SRC), I32_CONST, 4, I32_ADD, LOCAL_SET, SRC);
  emit(g(N), I32_CONST, 1, I32_SUB, LOCAL_SET, N);
  emit(BR, 0, END, END);
  emit(END);
  return [...vec([[2, I32]]), ...code];
}

const compiled = new Map<string, object | null>();
function moduleFor(R: number, region = 64, stride = 4): object | null {
  const key = `${R},${region},${stride}`;
  if (!compiled.has(key)) {
    let m: object | null = null;
    try {
      const bytes = profileModuleBytes(R, region, stride);
      m = Wasm.validate(bytes) ? new Wasm.Module(bytes) : null;
    } catch {
      m = null;
    }
    compiled.set(key, m);
  }
  return compiled.get(key) ?? null;
}

/** Whether the fused kernel can run for R runs here (WebAssembly SIMD present, R ≤ 8, not disabled). */
export function profileKernelAvailable(R: number): boolean {
  return R >= 1 && R <= PROFILE_MAX_RUNS && process.env.RLVR_NO_WASM !== '1' && moduleFor(R) !== null;
}

/** What the joint histogram of one tensor says (see the module comment). */
export interface PatternCounts {
  /** Entries per 15-bit magnitude pattern (sign dropped). */
  total: Uint32Array;
  /** Changed entries per pattern, per run. */
  changed: Uint32Array[];
  /** Entries per run mask (index m: bit r set = changed by run r). */
  perRunMask: Float64Array;
}

/** The functions of one instance of the kernel's module (`take` only with R ≥ 2). */
interface KernelExports {
  prof(a: number, t: number, groups: number, out: number, hist: number): void;
  hist(src: number, pairs: number, out: number): void;
  snap(desc: number, spans: number, dst: number): void;
  walk(src: number, n: number, first: number, pattern: number, need: number, masks: number, cum: number): number;
  take?: (row: number, key: number, keys: number, out: number) => void;
}

/**
 * One fused-kernel instance: its own memory holding R tuned chunk regions (files are read
 * straight into them), the joint histogram, the base tensor's pattern histogram, the WHOLE
 * base tensor and the R update masks of the whole tensor, which the kernel writes in place
 * (both grown as needed: the locality probe keeps the base for the bins, and having it first
 * lets `baseHistogram` find the straddling patterns before the pass). Use per tensor: read
 * the base into `baseWhole(n)`, `baseHistogram(n)`; per chunk, fill `tunedRegion(r)` and call
 * `run(n, baseEntry, tunedEntry, count)` on it (in sub-chunks if wanted); `maskWords(r, n)`
 * are run r's mask words; after the last chunk, `take()` returns the tensor's counts and
 * clears the histogram. `rowsView(lo, hi)` reads patterns' 2^R run-mask cells (cumulative).
 */
export class Bf16ProfileKernel {
  readonly runs: number;
  readonly maxElems: number;
  private memory: WasmMemory;
  private readonly offT: number;
  private readonly offH: number;
  private readonly offBH: number;
  private readonly offBase: number;
  private readonly region: number;
  /** Bytes between two runs' masks (baked into the module: one instance per stride used). */
  private stride = 0;
  /** Where run 0's mask words start (after the base region of the current tensor). */
  private offMask = 0;
  private readonly offOut: number;
  private readonly offDesc: number;
  /** Where the current tensor's snapshots go (after its masks). */
  private offSnap = 0;
  private snapSpans = 0;
  private readonly offCum: number;
  private cumView!: Uint32Array;
  /** The exports of the module instance for the current stride (`useStride`). */
  private fns!: KernelExports;
  private readonly instances = new Map<number, KernelExports>();
  /** Patterns the last WebAssembly take() wrote (zeroed before the next one). */
  private written: [number, number] = [0, -1];
  private kmin = PATTERNS;
  private kmax = -1;
  private padding = 0;
  private readonly out: PatternCounts;
  /** Views on the memory, remade when it grows (creating views per call showed in profiles). */
  private hView!: Uint32Array;
  private scratch16!: Uint16Array;
  private scratch32!: Uint32Array;
  private outPerRunMask: Uint32Array | null = null;

  private refreshViews(): void {
    this.hView = new Uint32Array(this.memory.buffer, this.offH, PATTERNS << this.runs);
    if (this.runs >= 2) {
      const b = this.memory.buffer;
      this.out.total = new Uint32Array(b, this.offOut, PATTERNS);
      this.out.changed = Array.from({ length: this.runs }, (_, r) => new Uint32Array(b, this.offOut + (r + 1) * PATTERNS * 4, PATTERNS));
      this.outPerRunMask = new Uint32Array(b, this.offOut + (this.runs + 1) * PATTERNS * 4, 1 << this.runs);
    }
    this.scratch16 = new Uint16Array(this.memory.buffer, 16, 16);
    this.scratch32 = new Uint32Array(this.memory.buffer, 0, 1);
    this.cumView = new Uint32Array(this.memory.buffer, this.offCum, 1 << this.runs);
  }

  constructor(R: number, maxElems: number) {
    this.runs = R;
    this.maxElems = Math.ceil(Math.max(32, maxElems) / 32) * 32;
    this.region = Math.ceil((this.maxElems * 2) / 64) * 64;
    if (process.env.RLVR_NO_WASM === '1') throw new Error('Bf16ProfileKernel: WebAssembly SIMD is not available');
    let top = KERNEL_SCRATCH;
    const alloc = (bytes: number): number => { const off = top; top += Math.ceil(bytes / 64) * 64; return off; };
    this.offT = alloc(this.region * R); // run r's region at offT + r·region
    this.offH = alloc(PATTERNS * (1 << R) * 4);
    this.offBH = alloc(PATTERNS * 4 * 2);
    this.offOut = alloc(PATTERNS * 4 * (R + 1) + (4 << R)); // take()'s totals, changed per run, per run mask
    this.offDesc = alloc(MAX_SNAPSHOT_SPANS * 12);
    this.offCum = alloc(4 << R);
    this.offBase = top; // base, then masks: grows with the largest tensor seen
    this.memory = new Wasm.Memory({ initial: Math.ceil((top + this.region) / 65536) });
    this.out = { total: new Uint32Array(PATTERNS), changed: Array.from({ length: R }, () => new Uint32Array(PATTERNS)), perRunMask: new Float64Array(1 << R) };
    this.useStride(MASK_STRIDE_UNIT); // throws when WebAssembly SIMD is not available
    this.refreshViews();
  }

  /** Selects (instantiating once) the module whose run-to-run mask stride is `stride` bytes. */
  private useStride(stride: number): void {
    if (stride === this.stride) return;
    let inst = this.instances.get(stride);
    if (!inst) {
      const m = moduleFor(this.runs, this.region, stride);
      if (!m) throw new Error('Bf16ProfileKernel: WebAssembly SIMD is not available');
      const ex = new Wasm.Instance(m, { e: { m: this.memory } }).exports;
      inst = new Wasm.Instance(m, { e: { m: this.memory } }).exports as unknown as KernelExports;
      this.instances.set(stride, inst);
    }
    this.fns = inst;
    this.stride = stride;
  }

  /**
   * The region for a whole base tensor of n entries (room for padding to 32 entries); also
   * makes room for its R masks after it (the mask stride is baked into the module: one
   * variant per distinct tensor size class). Views from earlier calls are invalid afterwards.
   */
  baseWhole(n: number): Uint8Array {
    const baseBytes = Math.ceil(n / 32) * 64 + 64;
    // run-to-run stride: the words rounded up to MASK_STRIDE_UNIT (a module variant per
    // distinct size; a model has a handful), not to a power of two, which could waste up to
    // R×n/8 bytes of the 4 GiB a WebAssembly memory can hold
    const stride = Math.max(1, Math.ceil((Math.ceil(n / 32) * 4) / MASK_STRIDE_UNIT)) * MASK_STRIDE_UNIT;
    this.useStride(stride);
    this.offMask = this.offBase + baseBytes;
    this.offSnap = this.offMask + this.runs * stride;
    const need = this.offSnap + SNAPSHOT_BYTES;
    const have = this.memory.buffer.byteLength;
    if (need > have) {
      (this.memory as unknown as { grow(pages: number): number }).grow(Math.ceil((need - have) / 65536));
      this.refreshViews();
    }
    return new Uint8Array(this.memory.buffer, this.offBase, 2 * n);
  }

  /** The base tensor's entries (after `baseWhole(n)` was filled). */
  baseEntries(n: number): Uint16Array { return new Uint16Array(this.memory.buffer, this.offBase, n); }

  /** Clears the two base-histogram tables, lets `fill` run `hist` on them, and returns their sum (a new array). */
  private histogram(fill: () => void): Uint32Array {
    const h2 = new Uint32Array(this.memory.buffer, this.offBH, PATTERNS * 2);
    h2.fill(0);
    fill();
    const out = new Uint32Array(PATTERNS);
    for (let k = 0; k < PATTERNS; k++) out[k] = h2[k]! + h2[PATTERNS + k]!;
    return out;
  }

  /** Entries per 15-bit pattern of the base tensor in `baseWhole(n)` (a new array). */
  baseHistogram(n: number): Uint32Array {
    const out = this.histogram(() => this.fns.hist(this.offBase, n >>> 1, this.offBH));
    if (n & 1) out[this.baseEntries(n)[n - 1]! & 0x7fff]!++;
    return out;
  }

  /**
   * Entries per 15-bit pattern of a SAMPLE of the base tensor in `baseWhole(n)`: blocks of
   * `block` entries (even), one in every `every` (a new array, and the entries sampled).
   */
  baseHistogramSampled(n: number, block: number, every: number): { hist: Uint32Array; sampled: number } {
    let sampled = 0;
    const hist = this.histogram(() => {
      for (let s = 0; s + block <= n; s += block * every) {
        this.fns.hist(this.offBase + 2 * s, block >>> 1, this.offBH);
        sampled += block;
      }
    });
    return { hist, sampled };
  }

  tunedRegion(r: number, bytes: number): Uint8Array { return new Uint8Array(this.memory.buffer, this.offT + r * this.region, bytes); }

  /**
   * Compares and counts `count` entries: base entries from `baseEntry` of the whole tensor
   * (of `n` entries) against entries from `tunedEntry` of the tuned regions; the words go to
   * word baseEntry/32 of the masks (`maskWords`). Entry offsets are multiples of 32; only the tensor's
   * last call may have a count that is not (it is padded with zeros, taken back in take()).
   */
  run(n: number, baseEntry: number, tunedEntry: number, count: number): void {
    if (count <= 0) return;
    if (tunedEntry + count > this.maxElems) throw new RangeError('Bf16ProfileKernel.run: chunk too large');
    const groups = Math.ceil(count / 32);
    const padded = groups * 32;
    if (padded !== count) {
      if (baseEntry + count !== n) throw new RangeError('Bf16ProfileKernel.run: only the last call may be partial');
      // zero vs zero: unchanged, finite, pattern 0
      new Uint16Array(this.memory.buffer, this.offBase + 2 * baseEntry, padded).fill(0, count);
      for (let r = 0; r < this.runs; r++) new Uint16Array(this.memory.buffer, this.offT + r * this.region + 2 * tunedEntry, padded).fill(0, count);
      this.padding += padded - count;
    }
    this.fns.prof(this.offBase + 2 * baseEntry, this.offT + 2 * tunedEntry, groups, this.offMask + baseEntry / 8, this.offH);
    const s = this.scratch16;
    for (let l = 0; l < 8; l++) {
      if (s[l]! > this.kmax) this.kmax = s[l]!;
      if (s[8 + l]! < this.kmin) this.kmin = s[8 + l]!;
    }
  }

  /** Mask words of run r for the current tensor's n entries, written in place by `run` (a view: invalid after the next `baseWhole`). */
  maskWords(r: number, n: number): Uint32Array {
    return new Uint32Array(this.memory.buffer, this.offMask + r * this.stride, Math.ceil(n / 32));
  }

  /** Did the last `run` see an all-ones exponent on either side? A superset test: it may also be set by |w| ≥ 2 (the caller then recounts). */
  nonFiniteSeen(): boolean { return this.scratch32[0] !== 0; }

  /**
   * Sets the straddler spans (inclusive pattern ranges, in key order) whose histogram rows
   * `snapshot` copies, and returns the u32 cells of `count` snapshots (a view on this memory,
   * valid until the next `baseWhole`), or null when there are too many spans for the kernel's
   * copy (the caller copies `rowsView`s itself).
   */
  snapshotSpans(spans: readonly [number, number][], count: number): Uint32Array | null {
    const M = 1 << this.runs;
    const keys = spans.reduce((a, [lo, hi]) => a + hi - lo + 1, 0);
    if (spans.length > MAX_SNAPSHOT_SPANS || count * keys * M * 4 > SNAPSHOT_BYTES) return null;
    const d = new Uint32Array(this.memory.buffer, this.offDesc, 3 * spans.length);
    let at = 0;
    spans.forEach(([lo, hi], i) => {
      d[3 * i] = this.offH + lo * M * 4;
      d[3 * i + 1] = (hi - lo + 1) * M * 4;
      d[3 * i + 2] = at * M * 4;
      at += hi - lo + 1;
    });
    this.snapSpans = spans.length;
    return new Uint32Array(this.memory.buffer, this.offSnap, count * keys * M);
  }

  /** Copies the spans' current rows to snapshot `index` (each snapshot is keys·2^R cells). */
  snapshot(index: number, keys: number): void {
    this.fns.snap(this.offDesc, this.snapSpans, this.offSnap + index * keys * (4 << this.runs));
  }

  /**
   * Walks the base entries first.. of the current tensor (count of them) in order and adds,
   * for each of 15-bit pattern `pattern` until `need` were seen, one to `cum[run mask]`
   * (the masks written by `run`). Returns how many it found (less than `need` only if the
   * entries ran out).
   */
  walkPattern(first: number, count: number, pattern: number, need: number, cum: Float64Array): number {
    const w = this.cumView;
    w.fill(0);
    const vec8 = count & ~7;
    let found = vec8 > 0 ? this.fns.walk(this.offBase + 2 * first, vec8, first, pattern, need, this.offMask, this.offCum) : 0;
    if (found < need) {
      // the last < 8 entries, one by one (the padding after them must not count)
      const h = new Uint16Array(this.memory.buffer, this.offBase + 2 * (first + vec8), count - vec8);
      for (let j = 0; j < h.length && found < need; j++) {
        if ((h[j]! & 0x7fff) !== pattern) continue;
        const e = first + vec8 + j;
        let rm = 0;
        for (let r = 0; r < this.runs; r++) rm |= ((this.maskWords(r, e + 1)[e >>> 5]! >>> (e & 31)) & 1) << r;
        w[rm]!++;
        found++;
      }
    }
    for (let m = 0; m < w.length; m++) cum[m]! += w[m]!;
    return found;
  }

  /** A live view of the 2^R cumulative run-mask cells of patterns lo..hi, row after row (padding not taken back; invalid after the memory grows). */
  rowsView(lo: number, hi: number): Uint32Array {
    const M = 1 << this.runs;
    return this.hView.subarray(lo * M, (hi + 1) * M);
  }

  /**
   * The counts accumulated since the last take(), and a cleared histogram. The returned
   * arrays are this kernel's own and are overwritten by the next take(): use them before.
   * `present` (the base histogram of the same entries, if known) skips empty patterns.
   */
  take(present?: Uint32Array): PatternCounts {
    if (this.fns.take && this.outPerRunMask) return this.takeWasm();
    const R = this.runs, M = 1 << R;
    const { total, changed, perRunMask } = this.out;
    total.fill(0);
    for (const c of changed) c.fill(0);
    perRunMask.fill(0);
    const h = this.hView;
    if (this.padding > 0) { h[0]! -= this.padding; this.padding = 0; }
    for (let key = this.kmin; key <= this.kmax; key++) {
      if (present && present[key] === 0) continue; // no entry of this pattern: its row is all zero
      const row = key * M;
      let t = 0;
      for (let m = 0; m < M; m++) {
        const c = h[row + m]!;
        if (c === 0) continue;
        h[row + m] = 0;
        t += c;
        perRunMask[m]! += c;
        for (let x = m; x !== 0; x &= x - 1) changed[31 - Math.clz32(x & -x)]![key]! += c;
      }
      total[key] = t;
    }
    this.kmin = PATTERNS;
    this.kmax = -1;
    return this.out;
  }

  /** take() in WebAssembly (R ≥ 2): the counts land in views on this kernel's memory. */
  private takeWasm(): PatternCounts {
    const M = 1 << this.runs;
    const { total, changed, perRunMask } = this.out;
    const [w0, w1] = this.written;
    if (w1 >= w0) { total.fill(0, w0, w1 + 1); for (const c of changed) c.fill(0, w0, w1 + 1); }
    if (this.padding > 0) { this.hView[0]! -= this.padding; this.padding = 0; }
    const lo = this.kmin, keys = Math.max(0, this.kmax - this.kmin + 1);
    this.fns.take!(this.offH + lo * M * 4, lo, keys, this.offOut);
    this.written = [lo, lo + keys - 1];
    const pr = this.outPerRunMask!;
    for (let m = 0; m < M; m++) perRunMask[m] = pr[m]!;
    this.kmin = PATTERNS;
    this.kmax = -1;
    return this.out;
  }
}

// ---------------------------------------------------------------------------------------
// Position scan: where do the patterns of a small set occur?
// ---------------------------------------------------------------------------------------

const SCAN_CHUNK = 1 << 18;
const I32_LOAD8_U = 0x2d, I32_LOAD16_U = 0x2f, I32_NE = 0x47, I32_STORE8 = 0x3a;

/**
 * `scan(src, n, tab, out, ids, first) → count`: for i < n with t = tab[u16(src + 2i) & 0x7fff]
 * non-zero, writes first + i to the next slot of `out` (i32) and t to the same slot of `ids`
 * (u8). Branch-free: it always stores and advances by (t != 0). Returns the slots written.
 */
function scanModuleBytes(): Uint8Array {
  const SRC = 0, N = 1, TAB = 2, OUT = 3, IDS = 4, FIRST = 5, I = 6, C = 7, T = 8;
  const { code, emit, g } = assembler();
  emit(BLOCK, VOID, LOOP, VOID);
  emit(g(I), g(N), I32_NE, I32_EQZ, BR_IF, 1);
  emit(g(TAB), g(SRC), g(I), I32_CONST, 1, I32_SHL, I32_ADD, I32_LOAD16_U, 1, 0, I32_CONST, ...sleb(0x7fff), I32_AND, I32_ADD, I32_LOAD8_U, 0, 0, LOCAL_SET, T);
  emit(g(OUT), g(C), I32_CONST, 2, I32_SHL, I32_ADD, g(FIRST), g(I), I32_ADD, I32_STORE, 2, 0);
  emit(g(IDS), g(C), I32_ADD, g(T), I32_STORE8, 0, 0);
  emit(g(C), g(T), I32_CONST, 0, I32_NE, I32_ADD, LOCAL_SET, C);
  emit(g(I), I32_CONST, 1, I32_ADD, LOCAL_SET, I);
  emit(BR, 0, END, END);
  emit(g(C), END);
  const body = [...vec([[3, I32]]), ...code];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32]]), ...vec([[I32]])]])),
    ...section(2, vec([[...str('e'), ...str('m'), 0x02, 0x00, ...uleb(1)]])),
    ...section(3, vec([uleb(0)])),
    ...section(7, vec([[...str('scan'), 0x00, ...uleb(0)]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ]);
}

interface Scanner { mem: WasmMemory; fn: (src: number, n: number, tab: number, out: number, ids: number, first: number) => number }
let scanner: Scanner | null | undefined;
const TAB_OFF = KERNEL_SCRATCH, SRC_OFF = TAB_OFF + PATTERNS, OUT_OFF = SRC_OFF + SCAN_CHUNK * 2, IDS_OFF = OUT_OFF + SCAN_CHUNK * 4;

function getScanner(): Scanner | null {
  if (scanner === undefined) {
    scanner = null;
    if (process.env.RLVR_NO_WASM !== '1') {
      try {
        const bytes = scanModuleBytes();
        if (Wasm.validate(bytes)) {
          const mem = new Wasm.Memory({ initial: Math.ceil((IDS_OFF + SCAN_CHUNK) / 65536) });
          const fn = new Wasm.Instance(new Wasm.Module(bytes), { e: { m: mem } }).exports.scan as Scanner['fn'];
          scanner = { mem, fn };
        }
      } catch {
        scanner = null;
      }
    }
  }
  return scanner;
}

/**
 * Calls `visit(positions, ids, count)` with the flat indices i ≥ from (ascending, in batches)
 * at which id = table[h[i] & 0x7fff] is non-zero, and those ids, until the end of `h` or
 * until `visit` returns false.
 */
export function forEachPatternPosition(
  h: Uint16Array, table: Uint8Array, from: number, visit: (pos: Int32Array, ids: Uint8Array, count: number) => boolean,
): void {
  const s = getScanner();
  if (s) {
    new Uint8Array(s.mem.buffer, TAB_OFF, PATTERNS).set(table);
    const src = new Uint16Array(s.mem.buffer, SRC_OFF, SCAN_CHUNK);
    const out = new Int32Array(s.mem.buffer, OUT_OFF, SCAN_CHUNK);
    const ids = new Uint8Array(s.mem.buffer, IDS_OFF, SCAN_CHUNK);
    for (let c = from; c < h.length; c += SCAN_CHUNK) {
      const n = Math.min(SCAN_CHUNK, h.length - c);
      src.set(h.subarray(c, c + n));
      const k = s.fn(SRC_OFF, n, TAB_OFF, OUT_OFF, IDS_OFF, c);
      if (k > 0 && !visit(out, ids, k)) return;
    }
    return;
  }
  const out = new Int32Array(SCAN_CHUNK);
  const ids = new Uint8Array(SCAN_CHUNK);
  for (let c = from; c < h.length; c += SCAN_CHUNK) {
    const end = Math.min(h.length, c + SCAN_CHUNK);
    let k = 0;
    for (let i = c; i < end; i++) { const t = table[h[i]! & 0x7fff]!; out[k] = i; ids[k] = t; k += t !== 0 ? 1 : 0; }
    if (k > 0 && !visit(out, ids, k)) return;
  }
}
