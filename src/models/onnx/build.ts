/**
 * Writes ONNX model files from TypeScript: a graph of nodes with float
 * tensors and attributes, encoded as an ONNX ModelProto by onnx-proto's
 * protobufjs schema. Only what keel's own exporters need: float tensors,
 * int/float/string attributes and their lists, and opset imports.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** ONNX IR version 8 (ONNX 1.10+), read by every onnxruntime keel supports. */
const IR_VERSION = 8;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** An attribute value: a plain number is an INT; a FLOAT says so, as 1.0 and 1 look the same in JavaScript. */
export type AttributeValue =
  | number
  | { readonly float: number }
  | string
  | Tensor
  | { readonly ints: readonly number[] }
  | { readonly floats: readonly number[] }
  | { readonly strings: readonly string[] };

export interface Tensor {
  readonly name: string;
  readonly dims: readonly number[];
  readonly values: Float32Array | readonly number[];
}

export interface Node {
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** 'ai.onnx.ml' for the trees; the default domain otherwise. */
  readonly domain?: string;
  readonly attributes?: Readonly<Record<string, AttributeValue>>;
}

/** A graph input or output: a float tensor; a string dimension is symbolic (e.g. 'N'). */
export interface Port {
  readonly name: string;
  readonly shape: readonly (number | string)[];
}

export interface ModelSpec {
  readonly graphName: string;
  readonly inputs: readonly Port[];
  readonly outputs: readonly Port[];
  readonly nodes: readonly Node[];
  readonly initializers?: readonly Tensor[];
  /** Opset per domain, e.g. { '': 17, 'ai.onnx.ml': 3 }. */
  readonly opsets: Readonly<Record<string, number>>;
  readonly docString?: string;
}

/** Encodes a model; the bytes are what `InferenceSession.create` reads. */
export function encodeModel(spec: ModelSpec): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: 'keel',
    docString: spec.docString ?? '',
    opsetImport: Object.entries(spec.opsets).map(([domain, version]) => onnx.OperatorSetIdProto.create({ domain, version })),
    graph: onnx.GraphProto.create({
      name: spec.graphName,
      node: spec.nodes.map((node, i) =>
        onnx.NodeProto.create({
          name: `${node.op}_${i}`,
          opType: node.op,
          domain: node.domain ?? '',
          input: [...node.inputs],
          output: [...node.outputs],
          attribute: Object.entries(node.attributes ?? {}).map(([name, value]) => attribute(name, value)),
        }),
      ),
      initializer: (spec.initializers ?? []).map(tensor),
      input: spec.inputs.map(port),
      output: spec.outputs.map(port),
    }),
  });
  return onnx.ModelProto.encode(model).finish();
}

function tensor(t: Tensor): InstanceType<typeof onnx.TensorProto> {
  const size = t.dims.reduce((a, b) => a * b, 1);
  if (t.values.length !== size) throw new Error(`tensor ${t.name}: ${t.values.length} values for dims [${t.dims.join(', ')}]`);
  return onnx.TensorProto.create({ name: t.name, dims: [...t.dims], dataType: FLOAT, floatData: Array.from(t.values) });
}

function port(p: Port): InstanceType<typeof onnx.ValueInfoProto> {
  return onnx.ValueInfoProto.create({
    name: p.name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: p.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, value: AttributeValue): InstanceType<typeof onnx.AttributeProto> {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer; write { float: ${value} }`);
    return onnx.AttributeProto.create({ name, type: T.INT, i: value });
  }
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(value) });
  if ('float' in value) return onnx.AttributeProto.create({ name, type: T.FLOAT, f: value.float });
  if ('ints' in value) return onnx.AttributeProto.create({ name, type: T.INTS, ints: [...value.ints] });
  if ('floats' in value) return onnx.AttributeProto.create({ name, type: T.FLOATS, floats: [...value.floats] });
  if ('strings' in value) return onnx.AttributeProto.create({ name, type: T.STRINGS, strings: value.strings.map((s) => new TextEncoder().encode(s)) });
  return onnx.AttributeProto.create({ name, type: T.TENSOR, t: tensor(value) });
}
