/**
 * A small gradient-boosted tree regressor, trained in TypeScript and exported
 * as an ONNX `TreeEnsembleRegressor` (ai.onnx.ml), so keel can build its own
 * tree models without Python and run them like any user's model.
 *
 * Training: squared-error loss, so each row's gradient is (prediction − y)
 * and its hessian is 1, which makes a node's hessian sum its row count.
 * Features are cut once into quantile bins of the training data (at most
 * 256, one byte per value); a node's best split comes from per-bin gradient
 * sums and counts. Trees grow depth-wise (breadth first), so nodes are
 * numbered 0, 1, 2, … within each tree as ONNX requires. A leaf's value is
 * −G / (H + l2) times the learning rate; the start value is the mean of y.
 *
 * Splits send `x <= threshold` left (ONNX BRANCH_LEQ). Thresholds are bin
 * edges, which are training values and so float32; leaf values and the base
 * value are rounded to float32 too. The JSON model therefore holds exactly the
 * numbers the ONNX file holds, and `predictGbdt` takes the same branches as
 * onnxruntime.
 *
 * NaN: onnxruntime sends NaN down the false branch when
 * `nodes_missing_value_tracks_true` is 0, which is what the export writes, and
 * `NaN <= t` is false in TypeScript too: in both, NaN goes right. Training
 * refuses NaN and infinities; keel never feeds them.
 */
import { Random } from '../random.js';
import { encodeModel } from './onnx/build.js';

export interface GbdtOptions {
  readonly trees: number;
  readonly maxDepth: number;
  readonly learningRate: number;
  /** Quantile bins per feature, 2 to 256; 64 unless told. */
  readonly bins?: number;
  /** Fewest training rows a leaf may hold; 20 unless told. */
  readonly minLeafRows?: number;
  /** L2 regularisation of leaf values (λ in −G / (H + λ)); 1 unless told. */
  readonly l2?: number;
  /** Share of rows each tree is grown on, drawn afresh per tree; 1 unless told. */
  readonly subsample?: number;
  readonly seed?: number;
  /** Called after each tree with the number of trees built so far and the training mean squared error. */
  readonly onProgress?: (tree: number, trainLoss: number) => void;
}

/**
 * One tree as parallel arrays indexed by node id (0 is the root). A leaf has
 * left = right = feature = −1 and its value; an internal node sends
 * `x[feature] <= threshold` to `left`, else to `right`, and has value 0.
 */
export interface GbdtTree {
  readonly feature: readonly number[];
  readonly threshold: readonly number[];
  readonly left: readonly number[];
  readonly right: readonly number[];
  readonly value: readonly number[];
}

/** Plain JSON-serialisable data. */
export interface GbdtModel {
  readonly format: 'keel.gbdt';
  readonly version: 1;
  /** Number of input features. */
  readonly features: number;
  readonly baseValue: number;
  readonly trees: readonly GbdtTree[];
}

const LEAF = -1;

/** Trains on `rows` rows of `cols` features, row-major in X. Same data, options and seed give the same model, bit for bit. */
export function trainGbdt(X: Float32Array, y: Float64Array, rows: number, cols: number, options: GbdtOptions): GbdtModel {
  const bins = options.bins ?? 64;
  const minLeafRows = options.minLeafRows ?? 20;
  const l2 = options.l2 ?? 1;
  const subsample = options.subsample ?? 1;
  if (rows < 1 || cols < 1 || X.length !== rows * cols || y.length !== rows) throw new Error(`gbdt: X has ${X.length} values and y ${y.length} for ${rows} x ${cols}`);
  if (!(options.trees >= 1 && options.maxDepth >= 1 && options.learningRate > 0)) throw new Error('gbdt: trees and maxDepth must be at least 1 and learningRate positive');
  if (!(bins >= 2 && bins <= 256 && minLeafRows >= 1 && l2 >= 0 && subsample > 0 && subsample <= 1)) throw new Error('gbdt: bins must be 2 to 256, minLeafRows at least 1, l2 at least 0, subsample in (0, 1]');
  if (!X.every(Number.isFinite) || !y.every(Number.isFinite)) throw new Error('gbdt: training data must be finite');

  const data = binData(X, rows, cols, bins);
  const grower: Grower = {
    data,
    grad: new Float64Array(rows),
    rowsOf: new Uint32Array(rows),
    scratch: new Uint32Array(rows),
    histGrad: new Float64Array(cols * bins),
    histCount: new Uint32Array(cols * bins),
    maxDepth: options.maxDepth,
    minLeafRows,
    l2,
    learningRate: options.learningRate,
  };

  const baseValue = Math.fround(y.reduce((sum, v) => sum + v, 0) / rows);
  const pred = new Float64Array(rows).fill(baseValue);
  const random = new Random(options.seed ?? 1);
  const trees: GbdtTree[] = [];
  for (let t = 0; t < options.trees; t++) {
    for (let r = 0; r < rows; r++) grower.grad[r] = pred[r]! - y[r]!;
    let sampled = 0;
    for (let r = 0; r < rows; r++) if (subsample === 1 || random.next() < subsample) grower.rowsOf[sampled++] = r;

    const tree = growTree(grower, sampled);
    trees.push(tree);
    // Every row moves, sampled or not, by the rounded leaf value the model stores.
    let squares = 0;
    for (let r = 0; r < rows; r++) {
      pred[r] = pred[r]! + leafValue(tree, X, r * cols);
      squares += (pred[r]! - y[r]!) ** 2;
    }
    options.onProgress?.(t + 1, squares / rows);
  }
  return { format: 'keel.gbdt', version: 1, features: cols, baseValue, trees };
}

/**
 * Evaluates the model in TypeScript: each tree's leaf summed, then the base value, in onnxruntime's order.
 * onnxruntime sums in float32, this in float64: the two differ by rounding only (well under 1e-5 here).
 */
export function predictGbdt(model: GbdtModel, X: Float32Array, rows: number): Float64Array {
  checkModel(model);
  if (X.length !== rows * model.features) throw new Error(`gbdt: X has ${X.length} values for ${rows} x ${model.features}`);
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (const tree of model.trees) sum += leafValue(tree, X, r * model.features);
    out[r] = sum + model.baseValue;
  }
  return out;
}

export interface GbdtOnnxOptions {
  readonly inputName?: string;
  readonly outputName?: string;
  readonly docString?: string;
}

/** The model as ONNX bytes: float input [N, features], float output [N, 1], one TreeEnsembleRegressor. */
export function gbdtToOnnx(model: GbdtModel, options: GbdtOnnxOptions = {}): Uint8Array {
  checkModel(model);
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'prediction';
  const nodes = { treeIds: [] as number[], nodeIds: [] as number[], featureIds: [] as number[], values: [] as number[], modes: [] as string[], trueIds: [] as number[], falseIds: [] as number[] };
  const targets = { treeIds: [] as number[], nodeIds: [] as number[], weights: [] as number[] };
  model.trees.forEach((tree, t) => {
    for (let n = 0; n < tree.left.length; n++) {
      const leaf = tree.left[n] === LEAF;
      nodes.treeIds.push(t);
      nodes.nodeIds.push(n);
      // Leaves carry no split; onnxruntime ignores these fields for them, 0 keeps them in range.
      nodes.featureIds.push(leaf ? 0 : tree.feature[n]!);
      nodes.values.push(leaf ? 0 : tree.threshold[n]!);
      nodes.modes.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      nodes.trueIds.push(leaf ? 0 : tree.left[n]!);
      nodes.falseIds.push(leaf ? 0 : tree.right[n]!);
      if (leaf) {
        targets.treeIds.push(t);
        targets.nodeIds.push(n);
        targets.weights.push(tree.value[n]!);
      }
    }
  });

  return encodeModel({
    graphName: 'keel_gbdt',
    docString: options.docString,
    inputs: [{ name: inputName, shape: ['N', model.features] }],
    outputs: [{ name: outputName, shape: ['N', 1] }],
    opsets: { '': 17, 'ai.onnx.ml': 3 },
    nodes: [
      {
        op: 'TreeEnsembleRegressor',
        domain: 'ai.onnx.ml',
        inputs: [inputName],
        outputs: [outputName],
        attributes: {
          n_targets: 1,
          aggregate_function: 'SUM',
          post_transform: 'NONE',
          base_values: { floats: [model.baseValue] },
          nodes_treeids: { ints: nodes.treeIds },
          nodes_nodeids: { ints: nodes.nodeIds },
          nodes_featureids: { ints: nodes.featureIds },
          nodes_values: { floats: nodes.values },
          nodes_modes: { strings: nodes.modes },
          nodes_truenodeids: { ints: nodes.trueIds },
          nodes_falsenodeids: { ints: nodes.falseIds },
          // 0: NaN fails `x <= t` and goes to the false (right) node, as in predictGbdt.
          nodes_missing_value_tracks_true: { ints: nodes.featureIds.map(() => 0) },
          target_treeids: { ints: targets.treeIds },
          target_nodeids: { ints: targets.nodeIds },
          target_ids: { ints: targets.treeIds.map(() => 0) },
          target_weights: { floats: targets.weights },
        },
      },
    ],
  });
}

function checkModel(model: GbdtModel): void {
  if (model.format !== 'keel.gbdt' || model.version !== 1) throw new Error(`gbdt: not a keel.gbdt version 1 model`);
}

function leafValue(tree: GbdtTree, X: Float32Array, offset: number): number {
  let node = 0;
  while (tree.left[node] !== LEAF) node = X[offset + tree.feature[node]!]! <= tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
  return tree.value[node]!;
}

interface BinnedData {
  readonly rows: number;
  readonly cols: number;
  /** Histogram slots per feature: the `bins` option. */
  readonly stride: number;
  /** Per feature, ascending: bin b holds x with edges[b − 1] < x <= edges[b], so `x <= edges[b]` is `bin <= b`. */
  readonly edges: readonly Float32Array[];
  /** Bin of each value, feature-major (index f * rows + r), so a histogram pass reads one feature's bytes. */
  readonly bin: Uint8Array;
}

function binData(X: Float32Array, rows: number, cols: number, bins: number): BinnedData {
  const edges: Float32Array[] = [];
  const bin = new Uint8Array(rows * cols);
  const column = new Float32Array(rows);
  for (let f = 0; f < cols; f++) {
    for (let r = 0; r < rows; r++) column[r] = X[r * cols + f]!;
    column.sort();
    const cuts: number[] = [];
    for (let i = 1; i < bins; i++) {
      const edge = column[Math.ceil((i * rows) / bins) - 1]!;
      // Repeated values give equal quantiles: keep one edge. An edge at the maximum would split nothing off.
      if (edge < column[rows - 1]! && edge !== cuts[cuts.length - 1]) cuts.push(edge);
    }
    const featureEdges = Float32Array.from(cuts);
    edges.push(featureEdges);
    for (let r = 0; r < rows; r++) bin[f * rows + r] = binOf(featureEdges, X[r * cols + f]!);
  }
  return { rows, cols, stride: bins, edges, bin };
}

/** Number of edges below x (binary search). */
function binOf(edges: Float32Array, x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (edges[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Buffers reused by every tree. */
interface Grower {
  readonly data: BinnedData;
  /** Gradient per training row: prediction − y. */
  readonly grad: Float64Array;
  /** The tree's rows; each node owns a contiguous range, split in place. */
  readonly rowsOf: Uint32Array;
  readonly scratch: Uint32Array;
  readonly histGrad: Float64Array;
  readonly histCount: Uint32Array;
  readonly maxDepth: number;
  readonly minLeafRows: number;
  readonly l2: number;
  readonly learningRate: number;
}

interface Split {
  readonly feature: number;
  readonly bin: number;
}

/** Grows one tree on the first `sampled` entries of rowsOf, breadth first: a node's id is its place in the queue. */
function growTree(g: Grower, sampled: number): GbdtTree {
  const tree = { feature: [] as number[], threshold: [] as number[], left: [] as number[], right: [] as number[], value: [] as number[] };
  const queue = [{ start: 0, end: sampled, depth: 0 }];
  for (let id = 0; id < queue.length; id++) {
    const { start, end, depth } = queue[id]!;
    let gradSum = 0;
    for (let i = start; i < end; i++) gradSum += g.grad[g.rowsOf[i]!]!;
    const split = depth < g.maxDepth && end - start >= 2 * g.minLeafRows ? bestSplit(g, start, end, gradSum) : undefined;
    if (split === undefined) {
      tree.feature.push(LEAF);
      tree.threshold.push(0);
      tree.left.push(LEAF);
      tree.right.push(LEAF);
      // Only a root can be empty (a tiny subsample); with l2 = 0 its value would be 0 / 0.
      tree.value.push(end > start ? Math.fround((-gradSum / (end - start + g.l2)) * g.learningRate) : 0);
      continue;
    }
    const middle = partition(g, start, end, split);
    tree.feature.push(split.feature);
    tree.threshold.push(Math.fround(g.data.edges[split.feature]![split.bin]!));
    tree.left.push(queue.length);
    tree.right.push(queue.length + 1);
    tree.value.push(0);
    queue.push({ start, end: middle, depth: depth + 1 }, { start: middle, end, depth: depth + 1 });
  }
  return tree;
}

/** The split with the largest positive gain whose sides both keep minLeafRows; the first found wins a tie. */
function bestSplit(g: Grower, start: number, end: number, gradSum: number): Split | undefined {
  const { data, grad, rowsOf, histGrad, histCount, l2, minLeafRows } = g;
  const bin = data.bin;
  const count = end - start;
  histGrad.fill(0);
  histCount.fill(0);
  for (let f = 0; f < data.cols; f++) {
    const binBase = f * data.rows;
    const histBase = f * data.stride;
    for (let i = start; i < end; i++) {
      const r = rowsOf[i]!;
      const slot = histBase + bin[binBase + r]!;
      histGrad[slot] = histGrad[slot]! + grad[r]!;
      histCount[slot] = histCount[slot]! + 1;
    }
  }

  const parentScore = (gradSum * gradSum) / (count + l2);
  let best: Split | undefined;
  let bestGain = 0;
  for (let f = 0; f < data.cols; f++) {
    const histBase = f * data.stride;
    let leftGrad = 0;
    let leftCount = 0;
    // The last bin has no edge above it: splitting there would leave the right side empty.
    for (let b = 0; b < data.edges[f]!.length; b++) {
      leftGrad += histGrad[histBase + b]!;
      leftCount += histCount[histBase + b]!;
      const rightCount = count - leftCount;
      if (leftCount < minLeafRows) continue;
      if (rightCount < minLeafRows) break;
      const rightGrad = gradSum - leftGrad;
      const gain = (leftGrad * leftGrad) / (leftCount + l2) + (rightGrad * rightGrad) / (rightCount + l2) - parentScore;
      if (gain > bestGain) {
        bestGain = gain;
        best = { feature: f, bin: b };
      }
    }
  }
  return best;
}

/** Reorders rowsOf[start, end) so rows going left come first, each side in its former order; returns where the right side starts. */
function partition(g: Grower, start: number, end: number, split: Split): number {
  const binBase = split.feature * g.data.rows;
  let left = start;
  let right = 0;
  for (let i = start; i < end; i++) {
    const r = g.rowsOf[i]!;
    if (g.data.bin[binBase + r]! <= split.bin) g.rowsOf[left++] = r;
    else g.scratch[right++] = r;
  }
  g.rowsOf.set(g.scratch.subarray(0, right), left);
  return left;
}
