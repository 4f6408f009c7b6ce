/**
 * Hand-built safetensors bytes for the io tests and the committed fixtures under
 * fixtures/io/ (written by fixtures/io/make-fixtures.ts). Everything is deterministic:
 * random payloads come from a seeded Rng, so regenerating gives byte-identical files.
 * Not a test file itself (no `.test.` in the name).
 */
import { DTYPES, type DType, ITEMSIZE, numberToBf16 } from '../src/io/dtype.js';
import { type SafetensorsErrorCode } from '../src/io/safetensors.js';
import { type TensorToWrite } from '../src/io/writer.js';
import { Rng } from '../src/util/random.js';

const enc = new TextEncoder();

/** 8-byte little-endian u64. */
export function u64le(n: bigint | number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

export function concat(...parts: (Uint8Array | string)[]): Uint8Array {
  const bs = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : p));
  const out = new Uint8Array(bs.reduce((a, b) => a + b.byteLength, 0));
  let o = 0;
  for (const b of bs) { out.set(b, o); o += b.byteLength; }
  return out;
}

/**
 * A file from a raw header (string or bytes, used verbatim) and data bytes. The length
 * prefix is the header's byte length unless `headerLength` overrides it.
 */
export function rawFile(header: string | Uint8Array, data: Uint8Array | number = 0, headerLength?: bigint | number): Uint8Array {
  const hb = typeof header === 'string' ? enc.encode(header) : header;
  const db = typeof data === 'number' ? new Uint8Array(data) : data;
  return concat(u64le(headerLength ?? hb.byteLength), hb, db);
}

/** A JSON header object → file with `dataBytes` zero (or given) data bytes. */
export function jsonFile(header: unknown, data: Uint8Array | number = 0): Uint8Array {
  return rawFile(JSON.stringify(header), data);
}

export interface SimpleTensor { name: string; dtype: DType; shape: number[]; data: Uint8Array }

/** A well-formed file (offsets contiguous in the given order), header padded with spaces to 8. */
export function validFile(tensors: readonly SimpleTensor[], metadata?: Record<string, string>, pad = true): Uint8Array {
  const h: Record<string, unknown> = {};
  if (metadata) h.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    Object.defineProperty(h, t.name, { value: { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.byteLength] }, enumerable: true });
    off += t.data.byteLength;
  }
  let json = JSON.stringify(h);
  if (pad) json += ' '.repeat((8 - ((enc.encode(json).byteLength + 8) % 8)) % 8);
  return rawFile(json, concat(...tensors.map((t) => t.data)));
}

/** `n` seeded random bytes. */
export function randomBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.nextU32() & 0xff;
  return b;
}

/** A random tensor of `dtype` and `shape`, filled with seeded random bytes. */
export function randomTensor(rng: Rng, name: string, dtype: DType, shape: number[]): SimpleTensor {
  const n = shape.reduce((a, b) => a * b, 1) * ITEMSIZE[dtype];
  return { name, dtype, shape, data: randomBytes(rng, n) };
}

/**
 * Seeded valid files used as fuzz seeds: every dtype, 0-d, zero-size and multi-d tensors,
 * metadata, non-ASCII names.
 */
export function seedFiles(seed = 2025): Uint8Array[] {
  const rng = new Rng(seed);
  const files: Uint8Array[] = [];
  files.push(validFile(DTYPES.map((d, i) => randomTensor(rng, `t.${i}.${d}`, d, [1 + (i % 3), 2]))));
  files.push(validFile([
    randomTensor(rng, 'model.layers.0.self_attn.q_proj.weight', 'BF16', [4, 4]),
    randomTensor(rng, 'empty', 'F32', [3, 0]),
    randomTensor(rng, 'scalar', 'F64', []),
    randomTensor(rng, 'é名', 'U8', [5]),
  ], { format: 'pt', note: 'seed' }));
  files.push(validFile([randomTensor(rng, 'w', 'F16', [2, 3, 2])], undefined, false));
  files.push(rawFile('{}'));
  return files;
}

export interface MaliciousCase {
  /** File name under fixtures/io/malicious/. */
  file: string;
  /** The FormatError code reading it must raise. */
  code: SafetensorsErrorCode;
  /** One line for the README. */
  why: string;
  bytes: () => Uint8Array;
}

const I32x4 = (o: [number, number]): Record<string, unknown> => ({ dtype: 'I32', shape: [2, 2], data_offsets: o });

/** Known-hostile files: at least one per error code a file on disk can trigger. */
export const MALICIOUS_CASES: readonly MaliciousCase[] = [
  { file: 'too-small.safetensors', code: 'E_TOO_SMALL', why: '5 bytes: shorter than the length prefix', bytes: () => new Uint8Array([1, 0, 0, 0, 0]) },
  { file: 'header-len-u64-max.safetensors', code: 'E_HEADER_TOO_LARGE', why: 'header length 2^64-1 (would wrap a 64-bit add)', bytes: () => rawFile('{}', 0, (1n << 64n) - 1n) },
  { file: 'header-len-100mb-plus-1.safetensors', code: 'E_HEADER_TOO_LARGE', why: 'header length 100,000,001: one byte over the limit', bytes: () => rawFile('{}', 0, 100_000_001) },
  { file: 'header-past-end.safetensors', code: 'E_HEADER_PAST_END', why: 'header length 4096 in a 10-byte file', bytes: () => rawFile('{}', 0, 4096) },
  { file: 'header-len-one-past-end.safetensors', code: 'E_HEADER_PAST_END', why: 'header length exactly one byte longer than the file holds', bytes: () => rawFile('{}', 0, 3) },
  { file: 'header-invalid-utf8.safetensors', code: 'E_HEADER_UTF8', why: 'a 0xFF byte inside a tensor name', bytes: () => rawFile(concat('{"a', new Uint8Array([0xff]), '":1}')) },
  { file: 'header-overlong-utf8.safetensors', code: 'E_HEADER_UTF8', why: "overlong UTF-8 for '/' (C0 AF), a classic filter bypass", bytes: () => rawFile(concat('{"', new Uint8Array([0xc0, 0xaf]), '":1}')) },
  { file: 'header-utf8-surrogate.safetensors', code: 'E_HEADER_UTF8', why: 'UTF-8-encoded surrogate (ED A0 80), invalid in UTF-8', bytes: () => rawFile(concat('{"', new Uint8Array([0xed, 0xa0, 0x80]), '":1}')) },
  { file: 'header-bom.safetensors', code: 'E_HEADER_JSON', why: 'UTF-8 byte-order mark before the JSON (serde rejects it)', bytes: () => rawFile('\ufeff{}') },
  { file: 'header-invalid-json.safetensors', code: 'E_HEADER_JSON', why: 'JSON cut in the middle of an object', bytes: () => rawFile('{"w":{"dtype":') },
  { file: 'header-nul-padded.safetensors', code: 'E_HEADER_JSON', why: 'header padded with NUL bytes instead of spaces', bytes: () => rawFile('{}\0\0\0\0\0\0') },
  { file: 'header-trailing-garbage.safetensors', code: 'E_HEADER_JSON', why: 'a second JSON value after the header object', bytes: () => rawFile('{}{}') },
  { file: 'header-lone-surrogate.safetensors', code: 'E_HEADER_JSON', why: 'tensor name with an unpaired \\ud800 escape', bytes: () => rawFile('{"a\\ud800":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}') },
  { file: 'header-ansi-escape.safetensors', code: 'E_HEADER_JSON', why: 'raw ESC control bytes in a name (terminal injection attempt); JSON forbids them', bytes: () => rawFile('{"\u001b[2J\u001b[31mpwned":1}') },
  { file: 'header-array.safetensors', code: 'E_HEADER_NOT_OBJECT', why: 'header is a JSON array', bytes: () => rawFile('[]') },
  { file: 'header-null.safetensors', code: 'E_HEADER_NOT_OBJECT', why: 'header is JSON null', bytes: () => rawFile('null') },
  { file: 'header-deep-nesting.safetensors', code: 'E_TENSOR_ENTRY', why: '100,000 nested arrays (stack exhaustion attempt)', bytes: () => rawFile(`{"w":${'['.repeat(100_000)}${']'.repeat(100_000)}}`) },
  { file: 'duplicate-name.safetensors', code: 'E_DUPLICATE_NAME', why: 'the same tensor name twice with different offsets (JSON.parse would keep the last)', bytes: () => rawFile(`{"w":${JSON.stringify(I32x4([0, 16]))},"w":${JSON.stringify(I32x4([16, 32]))}}`, 32) },
  { file: 'duplicate-dtype-key.safetensors', code: 'E_DUPLICATE_KEY', why: 'dtype given twice inside one entry (parsers disagree on which wins)', bytes: () => rawFile('{"w":{"dtype":"U8","dtype":"I32","shape":[4],"data_offsets":[0,4]}}', 4) },
  { file: 'metadata-not-string.safetensors', code: 'E_METADATA', why: '__metadata__ value is a number', bytes: () => jsonFile({ __metadata__: { format: 1 } }) },
  { file: 'metadata-array.safetensors', code: 'E_METADATA', why: '__metadata__ is an array', bytes: () => jsonFile({ __metadata__: ['a'] }) },
  { file: 'entry-not-object.safetensors', code: 'E_TENSOR_ENTRY', why: 'tensor entry is a number', bytes: () => jsonFile({ w: 5 }) },
  { file: 'entry-missing-offsets.safetensors', code: 'E_TENSOR_ENTRY', why: 'tensor entry without data_offsets', bytes: () => jsonFile({ w: { dtype: 'U8', shape: [0] } }) },
  { file: 'unknown-dtype.safetensors', code: 'E_UNKNOWN_DTYPE', why: 'dtype "BF32" does not exist', bytes: () => jsonFile({ w: { dtype: 'BF32', shape: [1], data_offsets: [0, 4] } }, 4) },
  { file: 'lowercase-dtype.safetensors', code: 'E_UNKNOWN_DTYPE', why: 'dtype "bf16": names are case-sensitive', bytes: () => jsonFile({ w: { dtype: 'bf16', shape: [1], data_offsets: [0, 2] } }, 2) },
  { file: 'unsupported-dtype-f8e8m0.safetensors', code: 'E_UNKNOWN_DTYPE', why: 'F8_E8M0: valid in the reference, not supported here', bytes: () => jsonFile({ w: { dtype: 'F8_E8M0', shape: [1], data_offsets: [0, 1] } }, 1) },
  { file: 'negative-shape.safetensors', code: 'E_BAD_SHAPE', why: 'shape [-1, 4]', bytes: () => jsonFile({ w: { dtype: 'U8', shape: [-1, 4], data_offsets: [0, 0] } }) },
  { file: 'fractional-shape.safetensors', code: 'E_BAD_SHAPE', why: 'shape [1.5]', bytes: () => jsonFile({ w: { dtype: 'U8', shape: [1.5], data_offsets: [0, 0] } }) },
  { file: 'string-shape.safetensors', code: 'E_BAD_SHAPE', why: 'shape "4"', bytes: () => jsonFile({ w: { dtype: 'U8', shape: '4', data_offsets: [0, 4] } }, 4) },
  { file: 'shape-above-2p53.safetensors', code: 'E_BAD_SHAPE', why: 'a dimension of 2^64-2 (not exactly representable)', bytes: () => rawFile('{"w":{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}}', 16) },
  { file: 'offsets-reversed.safetensors', code: 'E_BAD_OFFSETS', why: 'data_offsets [16, 0]', bytes: () => jsonFile({ w: I32x4([16, 0]) }, 16) },
  { file: 'offsets-three.safetensors', code: 'E_BAD_OFFSETS', why: 'data_offsets with three entries', bytes: () => jsonFile({ w: { dtype: 'I32', shape: [2, 2], data_offsets: [0, 16, 32] } }, 16) },
  { file: 'offsets-negative.safetensors', code: 'E_BAD_OFFSETS', why: 'data_offsets [-16, 0]', bytes: () => jsonFile({ w: I32x4([-16, 0]) }, 16) },
  { file: 'shape-overflow-u64.safetensors', code: 'E_SIZE_OVERFLOW', why: 'shape [2^32, 2^32, 2^32]: element count overflows 64 bits', bytes: () => jsonFile({ w: { dtype: 'U8', shape: [2 ** 32, 2 ** 32, 2 ** 32], data_offsets: [0, 0] } }) },
  { file: 'shape-overflow-then-zero.safetensors', code: 'E_SIZE_OVERFLOW', why: 'shape [2^40, 2^40, 0]: 0 elements, but the running product overflows (the reference rejects it)', bytes: () => jsonFile({ w: { dtype: 'U8', shape: [2 ** 40, 2 ** 40, 0], data_offsets: [0, 0] } }) },
  { file: 'size-above-2p53.safetensors', code: 'E_SIZE_OVERFLOW', why: '2^57 bytes: beyond exact double arithmetic', bytes: () => jsonFile({ w: { dtype: 'F64', shape: [2 ** 50, 16], data_offsets: [0, 0] } }) },
  { file: 'size-mismatch.safetensors', code: 'E_SIZE_MISMATCH', why: 'I32 [2,2] needs 16 bytes, offsets give 4 (out-of-bounds read bait)', bytes: () => jsonFile({ w: I32x4([0, 4]) }, 4) },
  { file: 'offsets-overlap.safetensors', code: 'E_OFFSETS_GAP', why: 'two tensors overlapping by 8 bytes', bytes: () => jsonFile({ a: I32x4([0, 16]), b: I32x4([8, 24]) }, 24) },
  { file: 'offsets-alias.safetensors', code: 'E_OFFSETS_GAP', why: 'two tensors sharing the same bytes', bytes: () => jsonFile({ a: I32x4([0, 16]), b: I32x4([0, 16]) }, 16) },
  { file: 'offsets-gap.safetensors', code: 'E_OFFSETS_GAP', why: '4 unindexed bytes between two tensors (hidden payload)', bytes: () => jsonFile({ a: I32x4([0, 16]), b: I32x4([20, 36]) }, 36) },
  { file: 'offsets-not-from-zero.safetensors', code: 'E_OFFSETS_GAP', why: 'the first tensor starts at 8, not 0', bytes: () => jsonFile({ a: I32x4([8, 24]) }, 24) },
  { file: 'polyglot-zip.safetensors', code: 'E_TRAILING_BYTES', why: 'valid file followed by a ZIP end-of-central-directory record (polyglot)', bytes: () => concat(jsonFile({ w: I32x4([0, 16]) }, 16), new Uint8Array([0x50, 0x4b, 0x05, 0x06]), new Uint8Array(18)) },
  { file: 'trailing-one-byte.safetensors', code: 'E_TRAILING_BYTES', why: 'one byte after the last tensor', bytes: () => jsonFile({ w: I32x4([0, 16]) }, 17) },
  { file: 'truncated-data.safetensors', code: 'E_TRUNCATED', why: 'data cut 2 bytes short', bytes: () => jsonFile({ w: I32x4([0, 16]) }, 14) },
  { file: 'offsets-past-end.safetensors', code: 'E_TRUNCATED', why: 'a 1 TiB tensor declared in a tiny file', bytes: () => jsonFile({ w: { dtype: 'U8', shape: [2 ** 40], data_offsets: [0, 2 ** 40] } }) },
];

/** The tiny Qwen2-style checkpoint committed as fixtures/io/tiny-sharded (2 layers, 2 shards). */
export const TINY_CONFIG = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: 8, intermediate_size: 12,
  num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4, vocab_size: 16,
  rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false, torch_dtype: 'bfloat16',
};

/** Tensor list and values of the tiny checkpoint: N(0, 0.02) weights rounded to bf16 (seed 7),
 * norms all-ones in F32. `values` holds the exact decoded numbers the tests compare against. */
export function tinyTensors(seed = 7): { tensors: TensorToWrite[]; values: Map<string, number[]>; shardOf: (name: string) => string } {
  const rng = new Rng(seed);
  const c = TINY_CONFIG;
  const kv = c.num_key_value_heads * c.head_dim;
  const specs: [string, number[], DType][] = [['model.embed_tokens.weight', [c.vocab_size, c.hidden_size], 'BF16']];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const p = `model.layers.${l}`;
    specs.push(
      [`${p}.input_layernorm.weight`, [c.hidden_size], 'F32'],
      [`${p}.self_attn.q_proj.weight`, [c.hidden_size, c.hidden_size], 'BF16'],
      [`${p}.self_attn.q_proj.bias`, [c.hidden_size], 'BF16'],
      [`${p}.self_attn.k_proj.weight`, [kv, c.hidden_size], 'BF16'],
      [`${p}.self_attn.k_proj.bias`, [kv], 'BF16'],
      [`${p}.self_attn.v_proj.weight`, [kv, c.hidden_size], 'BF16'],
      [`${p}.self_attn.v_proj.bias`, [kv], 'BF16'],
      [`${p}.self_attn.o_proj.weight`, [c.hidden_size, c.hidden_size], 'BF16'],
      [`${p}.post_attention_layernorm.weight`, [c.hidden_size], 'F32'],
      [`${p}.mlp.gate_proj.weight`, [c.intermediate_size, c.hidden_size], 'BF16'],
      [`${p}.mlp.up_proj.weight`, [c.intermediate_size, c.hidden_size], 'BF16'],
      [`${p}.mlp.down_proj.weight`, [c.hidden_size, c.intermediate_size], 'BF16'],
    );
  }
  specs.push(['model.norm.weight', [c.hidden_size], 'F32'], ['lm_head.weight', [c.vocab_size, c.hidden_size], 'BF16']);
  const tensors: TensorToWrite[] = [];
  const values = new Map<string, number[]>();
  for (const [name, shape, dtype] of specs) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (dtype === 'F32') {
      const v = new Float32Array(n).fill(1);
      tensors.push({ name, dtype, shape, data: new Uint8Array(v.buffer) });
      values.set(name, [...v]);
    } else {
      const bits = new Uint16Array(n);
      const vals: number[] = [];
      for (let i = 0; i < n; i++) {
        bits[i] = numberToBf16(rng.normal() * 0.02);
        const f = new Float32Array(new Uint32Array([bits[i]! << 16]).buffer)[0]!;
        vals.push(f);
      }
      tensors.push({ name, dtype, shape, data: new Uint8Array(bits.buffer) });
      values.set(name, vals);
    }
  }
  // Layer 0 and the embedding in shard 1; layer 1, final norm and lm_head in shard 2.
  const shardOf = (name: string): string =>
    name.startsWith('model.layers.0.') || name === 'model.embed_tokens.weight'
      ? 'model-00001-of-00002.safetensors' : 'model-00002-of-00002.safetensors';
  return { tensors, values, shardOf };
}

/** fixtures/io/malicious/README.md: one line per file. */
export function maliciousReadme(): string {
  const lines = [
    '# Known-hostile safetensors files',
    '',
    'Generated by `npx tsx fixtures/io/make-fixtures.ts` (cases in `test/io.build.ts`); do not edit by hand.',
    'Each must be rejected with the error code shown (`test/io.malicious.test.ts`); `manifest.json` is the same list as data.',
    '',
    '| file | code | what is wrong |',
    '| --- | --- | --- |',
    ...MALICIOUS_CASES.map((c) => `| \`${c.file}\` | ${c.code} | ${c.why.replace(/\|/g, '\\|')} |`),
  ];
  return lines.join('\n') + '\n';
}
