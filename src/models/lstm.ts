/**
 * A small LSTM regressor in plain TypeScript: one LSTM layer over a window of
 * W steps of F features, then a linear head on the last hidden state. Trained
 * here with backprop through time (MSE loss, Adam), evaluated here, and
 * exported with the ONNX LSTM op (opset 14) for onnxruntime.
 *
 * Gate blocks are in ONNX order everywhere, in training as in the stored
 * model: i (input), o (output), f (forget), c (cell candidate). The stored
 * weights are therefore the ONNX initializers as they are.
 *
 * Features are expected already standardised by the caller.
 */
import { Random } from '../random.js';
import { encodeModel } from './onnx/build.js';

/** Plain JSON data. Matrices are row-major; rows come in gate blocks of H: i, o, f, c. */
export interface LstmModel {
  readonly format: 'keel.lstm';
  readonly version: 1;
  /** F: features per time step. */
  readonly inputSize: number;
  /** H: the LSTM's hidden size. */
  readonly hiddenSize: number;
  /** W: time steps per sample. */
  readonly window: number;
  /** Input weights, 4H x F. */
  readonly W: readonly number[];
  /** Recurrent weights, 4H x H. */
  readonly R: readonly number[];
  /** Input and recurrent biases, 4H each; the cell adds both (ONNX keeps them apart). */
  readonly Wb: readonly number[];
  readonly Rb: readonly number[];
  /** Linear head on the last hidden state: prediction = headW · h + headB. */
  readonly headW: readonly number[];
  readonly headB: number;
}

export interface LstmTrainOptions {
  readonly window: number;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly epochs: number;
  readonly batchSize: number;
  /** Adam's step size. */
  readonly learningRate: number;
  readonly seed: number;
  /** Rescales a batch's gradient down to this global L2 norm when it is longer. */
  readonly clipNorm?: number;
  /** Called after each epoch (counted from 1) with the mean squared error over that epoch's batches. */
  readonly onProgress?: (epoch: number, trainLoss: number) => void;
}

/** The mean squared error over some samples and its gradient for every weight. */
export interface LstmGradient {
  readonly loss: number;
  readonly W: Float64Array;
  readonly R: Float64Array;
  /** The same for Wb and Rb: the cell only sees their sum. */
  readonly bias: Float64Array;
  readonly headW: Float64Array;
  readonly headB: number;
}

export interface LstmOnnxOptions {
  readonly inputName?: string;
  readonly outputName?: string;
  readonly docString?: string;
}

/** Gate blocks, in ONNX order: block g holds rows g*H .. g*H + H - 1. */
const GATE_I = 0;
const GATE_O = 1;
const GATE_F = 2;
const GATE_C = 3;

const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const ADAM_EPSILON = 1e-8;

/**
 * Trains on `samples` windows: X is samples x window x inputSize, row-major;
 * y is one target per sample. The same seed gives the same model bit for bit.
 */
export function trainLstm(X: Float32Array, y: Float64Array, samples: number, options: LstmTrainOptions): LstmModel {
  const { window: W, inputSize: F, hiddenSize: H, epochs, batchSize } = options;
  checkShape(F, H, W);
  checkData(X, samples, W, F);
  if (y.length !== samples) throw new Error(`trainLstm: ${y.length} targets for ${samples} samples`);
  if (!(batchSize >= 1)) throw new Error(`trainLstm: batchSize ${batchSize} must be at least 1`);

  const random = new Random(options.seed);
  const net = new Network(F, H, W);
  initialise(net, random);
  const adam = new Adam(net.params.length, options.learningRate);
  const order = Int32Array.from({ length: samples }, (_, i) => i);
  const stride = W * F;

  for (let epoch = 1; epoch <= epochs; epoch++) {
    shuffle(order, random);
    let squaredErrors = 0;
    for (let start = 0; start < samples; start += batchSize) {
      const end = Math.min(samples, start + batchSize);
      net.grad.fill(0);
      for (let n = start; n < end; n++) {
        const s = order[n]!;
        const error = net.forward(X, s * stride) - y[s]!;
        squaredErrors += error * error;
        // d/dprediction of the batch's mean squared error.
        net.backward(X, s * stride, (2 * error) / (end - start));
      }
      if (options.clipNorm !== undefined) clipNorm(net.grad, options.clipNorm);
      adam.step(net.params, net.grad);
    }
    options.onProgress?.(epoch, squaredErrors / samples);
  }
  return toModel(net);
}

/** One prediction per sample; X is samples x window x inputSize, row-major. */
export function predictLstm(model: LstmModel, X: Float32Array, samples: number): Float64Array {
  const net = networkOf(model);
  checkData(X, samples, model.window, model.inputSize);
  const stride = model.window * model.inputSize;
  const out = new Float64Array(samples);
  for (let s = 0; s < samples; s++) out[s] = net.forward(X, s * stride);
  return out;
}

/**
 * One time step for streaming inference: reads the F features in x, updates
 * the hidden state h and cell state c (H each) in place, and returns the head
 * on the new h. From zero h and c, the value after `window` steps is what
 * predictLstm gives for that window.
 */
export function lstmStep(model: LstmModel, x: ArrayLike<number>, h: Float64Array, c: Float64Array): number {
  const net = networkOf(model);
  const { inputSize: F, hiddenSize: H } = model;
  if (x.length !== F || h.length !== H || c.length !== H) {
    throw new Error(`lstmStep: x, h, c have ${x.length}, ${h.length}, ${c.length} values; expected ${F}, ${H}, ${H}`);
  }
  cellStep(net.p, F, H, x, 0, h, c, net.gates[0]!, h, c);
  return head(net.p, h, H);
}

/** The loss and gradients training would use for one batch of these samples. */
export function lstmGradient(model: LstmModel, X: Float32Array, y: Float64Array, samples: number): LstmGradient {
  const net = networkOf(model);
  checkData(X, samples, model.window, model.inputSize);
  const stride = model.window * model.inputSize;
  net.grad.fill(0);
  let squaredErrors = 0;
  for (let s = 0; s < samples; s++) {
    const error = net.forward(X, s * stride) - y[s]!;
    squaredErrors += error * error;
    net.backward(X, s * stride, (2 * error) / samples);
  }
  return { loss: squaredErrors / samples, W: net.g.W.slice(), R: net.g.R.slice(), bias: net.g.b.slice(), headW: net.g.headW.slice(), headB: net.g.headB[0]! };
}

/**
 * ONNX opset 14: input float [N, window, inputSize] (one window per row,
 * batch first), output float [N, 1].
 */
export function lstmToOnnx(model: LstmModel, options: LstmOnnxOptions = {}): Uint8Array {
  checkModel(model);
  const { inputSize: F, hiddenSize: H, window: W } = model;
  const input = options.inputName ?? 'input';
  const output = options.outputName ?? 'prediction';
  return encodeModel({
    graphName: 'keel_lstm',
    docString: options.docString,
    opsets: { '': 14 },
    inputs: [{ name: input, shape: ['N', W, F] }],
    outputs: [{ name: output, shape: ['N', 1] }],
    initializers: [
      { name: 'lstm_W', dims: [1, 4 * H, F], values: model.W },
      { name: 'lstm_R', dims: [1, 4 * H, H], values: model.R },
      { name: 'lstm_B', dims: [1, 8 * H], values: [...model.Wb, ...model.Rb] },
      { name: 'head_W', dims: [H, 1], values: model.headW },
      { name: 'head_B', dims: [1], values: [model.headB] },
    ],
    nodes: [
      // The LSTM op wants [seq, batch, features]; onnxruntime does not run its batch-first layout.
      { op: 'Transpose', inputs: [input], outputs: ['steps'], attributes: { perm: { ints: [1, 0, 2] } } },
      // Only Y_h, the last hidden state [1, N, H], feeds the head; Y is left unnamed.
      { op: 'LSTM', inputs: ['steps', 'lstm_W', 'lstm_R', 'lstm_B'], outputs: ['', 'last_h'], attributes: { hidden_size: H } },
      // [1, N, H] -> [N, H]. Squeeze would need an int64 axes tensor from opset 13 on; Flatten needs none.
      { op: 'Flatten', inputs: ['last_h'], outputs: ['rows'], attributes: { axis: 2 } },
      { op: 'MatMul', inputs: ['rows', 'head_W'], outputs: ['head'] },
      { op: 'Add', inputs: ['head', 'head_B'], outputs: [output] },
    ],
  });
}

/** Every weight in one flat array, laid out W | R | bias | headW | headB, so Adam and clipping see one vector. */
interface Parameters {
  readonly W: Float64Array;
  readonly R: Float64Array;
  /** Wb + Rb: the cell only ever uses their sum. */
  readonly b: Float64Array;
  readonly headW: Float64Array;
  /** One value. */
  readonly headB: Float64Array;
}

function parameterCount(F: number, H: number): number {
  return 4 * H * F + 4 * H * H + 4 * H + H + 1;
}

function views(flat: Float64Array, F: number, H: number): Parameters {
  let at = 0;
  const take = (n: number) => flat.subarray(at, (at += n));
  return { W: take(4 * H * F), R: take(4 * H * H), b: take(4 * H), headW: take(H), headB: take(1) };
}

/** The weights as typed arrays, with the buffers a forward and backward pass over one window reuse. */
class Network {
  readonly params: Float64Array;
  readonly grad: Float64Array;
  readonly p: Parameters;
  readonly g: Parameters;
  /** hs[t] and cs[t] are the states before step t (hs[0] and cs[0] stay zero); gates[t] the activated gates of step t. */
  readonly hs: Float64Array[];
  readonly cs: Float64Array[];
  readonly gates: Float64Array[];
  private readonly dh: Float64Array;
  private readonly dc: Float64Array;
  private readonly dz: Float64Array;

  constructor(
    readonly inputSize: number,
    readonly hiddenSize: number,
    readonly window: number,
  ) {
    const H = hiddenSize;
    this.params = new Float64Array(parameterCount(inputSize, H));
    this.grad = new Float64Array(this.params.length);
    this.p = views(this.params, inputSize, H);
    this.g = views(this.grad, inputSize, H);
    this.hs = Array.from({ length: window + 1 }, () => new Float64Array(H));
    this.cs = Array.from({ length: window + 1 }, () => new Float64Array(H));
    this.gates = Array.from({ length: window }, () => new Float64Array(4 * H));
    this.dh = new Float64Array(H);
    this.dc = new Float64Array(H);
    this.dz = new Float64Array(4 * H);
  }

  /** The prediction for the window starting at X[base]; keeps every step's states for backward. */
  forward(X: ArrayLike<number>, base: number): number {
    const { inputSize: F, hiddenSize: H, window: W, hs, cs, gates } = this;
    for (let t = 0; t < W; t++) cellStep(this.p, F, H, X, base + t * F, hs[t]!, cs[t]!, gates[t]!, hs[t + 1]!, cs[t + 1]!);
    return head(this.p, hs[W]!, H);
  }

  /** Adds to grad the gradient of dPred·prediction for the window of the last forward (backprop through time). */
  backward(X: ArrayLike<number>, base: number, dPred: number): void {
    const { inputSize: F, hiddenSize: H, window: W, p, g, dh, dc, dz } = this;
    const { W: gW, R: gR, b: gb } = g;
    const R = p.R;
    const last = this.hs[W]!;
    for (let j = 0; j < H; j++) {
      g.headW[j]! += dPred * last[j]!;
      dh[j] = dPred * p.headW[j]!;
    }
    g.headB[0]! += dPred;
    dc.fill(0);

    for (let t = W - 1; t >= 0; t--) {
      const gate = this.gates[t]!;
      const cPrev = this.cs[t]!;
      const c = this.cs[t + 1]!;
      const hPrev = this.hs[t]!;
      // Through h = o·tanh(c) and c = f·cPrev + i·u to the gates' pre-activations dz.
      for (let j = 0; j < H; j++) {
        const i = gate[GATE_I * H + j]!;
        const o = gate[GATE_O * H + j]!;
        const f = gate[GATE_F * H + j]!;
        const u = gate[GATE_C * H + j]!;
        const tanhC = Math.tanh(c[j]!);
        const dcj = dc[j]! + dh[j]! * o * (1 - tanhC * tanhC);
        dz[GATE_I * H + j] = dcj * u * i * (1 - i);
        dz[GATE_O * H + j] = dh[j]! * tanhC * o * (1 - o);
        dz[GATE_F * H + j] = dcj * cPrev[j]! * f * (1 - f);
        dz[GATE_C * H + j] = dcj * i * (1 - u * u);
        dc[j] = dcj * f;
      }
      // The weights' gradients, and dh for step t - 1 (R transposed times dz).
      dh.fill(0);
      const xOff = base + t * F;
      for (let r = 0; r < 4 * H; r++) {
        const d = dz[r]!;
        gb[r]! += d;
        const wRow = r * F;
        for (let k = 0; k < F; k++) gW[wRow + k]! += d * X[xOff + k]!;
        const rRow = r * H;
        for (let k = 0; k < H; k++) {
          gR[rRow + k]! += d * hPrev[k]!;
          dh[k]! += R[rRow + k]! * d;
        }
      }
    }
  }
}

/**
 * One LSTM step on the F features at x[xOff]: writes the activated gates and
 * the new h and c. h may be hPrev and c may be cPrev: every gate is computed
 * before either is written.
 */
function cellStep(
  p: Parameters,
  F: number,
  H: number,
  x: ArrayLike<number>,
  xOff: number,
  hPrev: Float64Array,
  cPrev: Float64Array,
  gate: Float64Array,
  h: Float64Array,
  c: Float64Array,
): void {
  const { W, R, b } = p;
  for (let r = 0; r < 4 * H; r++) {
    let z = b[r]!;
    const wRow = r * F;
    for (let k = 0; k < F; k++) z += W[wRow + k]! * x[xOff + k]!;
    const rRow = r * H;
    for (let k = 0; k < H; k++) z += R[rRow + k]! * hPrev[k]!;
    gate[r] = z;
  }
  for (let j = 0; j < H; j++) {
    const i = sigmoid(gate[GATE_I * H + j]!);
    const o = sigmoid(gate[GATE_O * H + j]!);
    const f = sigmoid(gate[GATE_F * H + j]!);
    const u = Math.tanh(gate[GATE_C * H + j]!);
    gate[GATE_I * H + j] = i;
    gate[GATE_O * H + j] = o;
    gate[GATE_F * H + j] = f;
    gate[GATE_C * H + j] = u;
    c[j] = f * cPrev[j]! + i * u;
    h[j] = o * Math.tanh(c[j]!);
  }
}

function head(p: Parameters, h: Float64Array, H: number): number {
  let out = p.headB[0]!;
  for (let j = 0; j < H; j++) out += p.headW[j]! * h[j]!;
  return out;
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** Uniform ±1/sqrt(H) weights; zero biases except the forget gate's 1, so the cell starts out remembering. */
function initialise(net: Network, random: Random): void {
  const H = net.hiddenSize;
  const scale = 1 / Math.sqrt(H);
  const uniform = (a: Float64Array) => {
    for (let k = 0; k < a.length; k++) a[k] = (2 * random.next() - 1) * scale;
  };
  uniform(net.p.W);
  uniform(net.p.R);
  uniform(net.p.headW);
  net.p.b.fill(0);
  net.p.b.fill(1, GATE_F * H, (GATE_F + 1) * H);
  net.p.headB[0] = 0;
}

/** Fisher-Yates with the seeded stream. */
function shuffle(order: Int32Array, random: Random): void {
  for (let n = order.length - 1; n > 0; n--) {
    const m = Math.floor(random.next() * (n + 1));
    const swap = order[n]!;
    order[n] = order[m]!;
    order[m] = swap;
  }
}

function clipNorm(grad: Float64Array, maxNorm: number): void {
  let sum = 0;
  for (let k = 0; k < grad.length; k++) sum += grad[k]! * grad[k]!;
  const norm = Math.sqrt(sum);
  if (norm <= maxNorm) return;
  const scale = maxNorm / norm;
  for (let k = 0; k < grad.length; k++) grad[k]! *= scale;
}

class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private steps = 0;

  constructor(
    size: number,
    private readonly rate: number,
  ) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  step(params: Float64Array, grad: Float64Array): void {
    this.steps++;
    const correct1 = 1 - ADAM_BETA1 ** this.steps;
    const correct2 = 1 - ADAM_BETA2 ** this.steps;
    const { m, v } = this;
    for (let k = 0; k < params.length; k++) {
      const gk = grad[k]!;
      m[k] = ADAM_BETA1 * m[k]! + (1 - ADAM_BETA1) * gk;
      v[k] = ADAM_BETA2 * v[k]! + (1 - ADAM_BETA2) * gk * gk;
      params[k]! -= (this.rate * (m[k]! / correct1)) / (Math.sqrt(v[k]! / correct2) + ADAM_EPSILON);
    }
  }
}

/** Weights rounded to float32, so the JSON holds exactly what the ONNX file holds. */
function toModel(net: Network): LstmModel {
  const { p, inputSize, hiddenSize, window } = net;
  const float32 = (a: Float64Array) => Array.from(a, (v) => Math.fround(v));
  return {
    format: 'keel.lstm',
    version: 1,
    inputSize,
    hiddenSize,
    window,
    W: float32(p.W),
    R: float32(p.R),
    // Training keeps one bias per gate row; it all goes to Wb.
    Wb: float32(p.b),
    Rb: new Array<number>(4 * hiddenSize).fill(0),
    headW: float32(p.headW),
    headB: Math.fround(p.headB[0]!),
  };
}

/** Models are immutable data, so each one is turned into typed arrays once and the network reused. */
const networks = new WeakMap<LstmModel, Network>();

function networkOf(model: LstmModel): Network {
  let net = networks.get(model);
  if (net !== undefined) return net;
  checkModel(model);
  net = new Network(model.inputSize, model.hiddenSize, model.window);
  net.p.W.set(model.W);
  net.p.R.set(model.R);
  for (let r = 0; r < 4 * model.hiddenSize; r++) net.p.b[r] = model.Wb[r]! + model.Rb[r]!;
  net.p.headW.set(model.headW);
  net.p.headB[0] = model.headB;
  networks.set(model, net);
  return net;
}

function checkModel(model: LstmModel): void {
  if (model.format !== 'keel.lstm' || model.version !== 1) throw new Error(`not a keel.lstm version 1 model: ${model.format} ${model.version}`);
  const { inputSize: F, hiddenSize: H } = model;
  checkShape(F, H, model.window);
  const sizes: [string, number, number][] = [
    ['W', model.W.length, 4 * H * F],
    ['R', model.R.length, 4 * H * H],
    ['Wb', model.Wb.length, 4 * H],
    ['Rb', model.Rb.length, 4 * H],
    ['headW', model.headW.length, H],
  ];
  for (const [name, length, expected] of sizes) {
    if (length !== expected) throw new Error(`lstm model: ${name} has ${length} values, expected ${expected}`);
  }
}

function checkShape(F: number, H: number, W: number): void {
  const positive = (n: number) => Number.isInteger(n) && n >= 1;
  if (!positive(F) || !positive(H) || !positive(W)) throw new Error(`lstm: inputSize ${F}, hiddenSize ${H}, window ${W} must be positive integers`);
}

function checkData(X: Float32Array, samples: number, W: number, F: number): void {
  if (X.length !== samples * W * F) throw new Error(`lstm: X has ${X.length} values, expected ${samples} x ${W} x ${F}`);
}
