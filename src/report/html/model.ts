/**
 * The data model of the HTML report: what Node embeds as JSON in report.html and what
 * the browser code (src/report/browser/) renders. It is deliberately generic — tables,
 * line/bar/matrix figures, heatmaps — so that the shape knowledge of each probe's JSON
 * lives in one Node-side adapter per stage (src/report/html/sections/), where it is typed
 * and unit-tested, and the browser code stays a small renderer.
 *
 * Only types here (no runtime code): the browser bundle imports this file too.
 */

export type Cell = string | number | boolean | null;

/** How a column's numbers are shown: `pct` multiplies by 100 and adds `%`. */
export type ColumnType = 'text' | 'int' | 'num' | 'pct' | 'deg';

export interface ColumnSpec {
  key: string;
  label: string;
  type: ColumnType;
  /** Significant digits for `num` (default 4); decimals for `pct`/`deg` (default 2). */
  digits?: number;
  /** Hover help for the header. */
  help?: string;
}

/** A sortable, filterable table. */
export interface TableBlock {
  type: 'table';
  id: string;
  title: string;
  caption?: string;
  columns: ColumnSpec[];
  rows: Cell[][];
  /** Column keys offered as exact-match dropdown filters (e.g. model, kind, layer). */
  facets?: string[];
}

/** One table shown as tabs (e.g. per tensor / per layer / per module kind). */
export interface TabsBlock {
  type: 'tabs';
  id: string;
  title: string;
  tabs: { label: string; block: TableBlock }[];
}

export interface Series {
  name: string;
  x: number[];
  y: (number | null)[];
  dashed?: boolean;
  /** Colour slot (default: the series' position); series of one tuned model share a slot. */
  color?: number;
}

export interface RefLine {
  value: number;
  label: string;
}

export interface LineFigure {
  type: 'line';
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Horizontal reference lines (e.g. the random baseline α). */
  hlines?: RefLine[];
  /** Vertical reference positions drawn dashed (e.g. attention head boundaries). */
  vlines?: number[];
  logY?: boolean;
  caption?: string;
}

export interface BarFigure {
  type: 'bar';
  title: string;
  xLabel: string;
  yLabel: string;
  categories: string[];
  series: { name: string; values: (number | null)[] }[];
  /** Per-category baseline markers drawn as a short black tick over each bar group. */
  markers?: { name: string; values: (number | null)[] };
  hlines?: RefLine[];
  caption?: string;
}

/** A small labelled square matrix (e.g. the cross-run Jaccard matrix). */
export interface MatrixFigure {
  type: 'matrix';
  title: string;
  labels: string[];
  values: (number | null)[][];
  caption?: string;
}

export type Figure = LineFigure | BarFigure | MatrixFigure;

/**
 * What a figure follows in the page's global selection: nothing, the selected tensor
 * (layer + module), the selected layer, the selected module kind, or the selected tuned model.
 */
export type Binding = 'none' | 'tensor' | 'layer' | 'kind' | 'run';

export interface FigureBlock {
  type: 'figure';
  id: string;
  title: string;
  bind: Binding;
  /** Keyed by tensor name / layer number / module kind / run id; the single key `''` when bind is 'none'. */
  figures: Record<string, Figure>;
  caption?: string;
}

/**
 * Pooled update-mask images per tensor and tuned model. Each pixel is the fraction of the
 * `pool[0]×pool[1]` block's entries that changed, quantised to a byte (0..255), stored
 * base64 row-major. The consensus image (SPEC §2) is the mean of the runs' images, which
 * commutes with block pooling, so it is computed in the browser.
 */
export interface HeatmapTensor {
  /** Full tensor shape [rows, cols]. */
  shape: [number, number];
  /** Pooled image size [rows, cols]. */
  size: [number, number];
  /** Block size [rows, cols]; [1, 1] means full resolution. */
  pool: [number, number];
  /** base64 of size[0]*size[1] bytes per run id. */
  runs: Record<string, string>;
  /** Attention head size along the head axis, for drawing boundaries (rows of q/k/v, cols of o). */
  headDim?: number;
  headAxis?: 'rows' | 'cols';
}

export interface HeatmapBlock {
  type: 'heatmap';
  id: string;
  title: string;
  tensors: Record<string, HeatmapTensor>;
  caption?: string;
}

export interface TextBlock {
  type: 'text';
  /** Plain text paragraphs (no HTML: the browser sets textContent). */
  paragraphs: string[];
}

export interface KeyValueBlock {
  type: 'kv';
  title?: string;
  items: [string, string][];
}

/** Raw JSON shown folded (parameters of each stage, exactly as recorded). */
export interface JsonBlock {
  type: 'json';
  title: string;
  value: unknown;
}

export type Block = TableBlock | TabsBlock | FigureBlock | HeatmapBlock | TextBlock | KeyValueBlock | JsonBlock;

export interface Section {
  id: string;
  title: string;
  /** False when the stage's data file is missing: the section shows `note` only. */
  available: boolean;
  note?: string;
  blocks: Block[];
  /** 'grid': figures side by side (many small curves, e.g. training logs). */
  layout?: 'grid';
}

/** A tuned model (run) as the report names it. */
export interface RunInfo {
  id: string;
  label: string;
  /** Training family when known (from the manifest or the name): the summary compares RL with SFT. */
  role: 'rl' | 'sft' | 'other';
  path?: string;
}

export interface TensorInfo {
  name: string;
  layer: number | null;
  kind: string;
  shape: number[];
}

/** One of the paper's claims with measured numbers next to their baselines. */
export interface Claim {
  id: 'sparse' | 'consistent' | 'off-principal' | 'spectrum-preserving' | 'low-magnitude';
  title: string;
  /** The claim in the paper's words. */
  statement: string;
  /** False when the data it needs is missing. */
  available: boolean;
  note?: string;
  table: TableBlock | null;
}

export interface ReportData {
  title: string;
  tool: { name: string; version: string; schema: number };
  runs: RunInfo[];
  tensors: TensorInfo[];
  summary: {
    /** Table 1 of the paper: one row per tuned model. */
    table1: TableBlock | null;
    claims: Claim[];
    notes: string[];
  };
  sections: Section[];
}
