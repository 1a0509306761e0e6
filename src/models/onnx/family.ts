/**
 * A model's family (tree ensemble, LSTM, ...) read from its ONNX file: the
 * manifest does not name one, and the operators cannot claim what they are
 * not. Read by walking the protobuf to the graph's nodes and skipping
 * everything else by its length, so a large file's weights are never
 * decoded.
 */

/** The operators that make a family, by `domain:op_type` ('' is the default domain). */
const FAMILY_OPS: Readonly<Record<string, string>> = {
  'ai.onnx.ml:TreeEnsembleRegressor': 'tree-ensemble',
  'ai.onnx.ml:TreeEnsembleClassifier': 'tree-ensemble',
  'ai.onnx.ml:TreeEnsemble': 'tree-ensemble',
  ':LSTM': 'lstm',
  ':GRU': 'gru',
  ':RNN': 'rnn',
};

/** A graph without any of those operators (an affine map, an MLP, ...). */
export const OTHER_FAMILY = 'other';

// Field numbers from onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_NODE = 1;
const NODE_OP_TYPE = 4;
const NODE_DOMAIN = 7;

const LENGTH_DELIMITED = 2;

/** One protobuf message's fields, each as its number and, for a length-delimited field, its bytes. */
function* fields(bytes: Uint8Array, start: number, end: number): Generator<{ field: number; body?: [number, number] }> {
  let at = start;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= end) throw new Error('truncated varint');
      const b = bytes[at++]!;
      // Plain arithmetic: lengths and tags may pass 2^31, where bit operators would wrap.
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
      if (shift > 56) throw new Error('varint too long');
    }
  };
  while (at < end) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    switch (tag % 8) {
      case 0:
        varint();
        yield { field };
        break;
      case 1:
        at += 8;
        yield { field };
        break;
      case LENGTH_DELIMITED: {
        const length = varint();
        if (at + length > end) throw new Error(`field ${field} runs past its message`);
        yield { field, body: [at, at + length] };
        at += length;
        break;
      }
      case 5:
        at += 4;
        yield { field };
        break;
      default:
        throw new Error(`wire type ${tag % 8} of field ${field} is not one ONNX uses`);
    }
  }
  if (at !== end) throw new Error('a fixed-width field runs past its message');
}

const text = new TextDecoder();

/** The `domain:op_type` of each node of the main graph (subgraphs of If/Loop aside). */
function graphOps(bytes: Uint8Array): Set<string> {
  const ops = new Set<string>();
  for (const m of fields(bytes, 0, bytes.length)) {
    if (m.field !== MODEL_GRAPH || !m.body) continue;
    for (const g of fields(bytes, ...m.body)) {
      if (g.field !== GRAPH_NODE || !g.body) continue;
      let op = '';
      let domain = '';
      for (const n of fields(bytes, ...g.body)) {
        if (n.field === NODE_OP_TYPE && n.body) op = text.decode(bytes.subarray(...n.body));
        else if (n.field === NODE_DOMAIN && n.body) domain = text.decode(bytes.subarray(...n.body));
      }
      // 'ai.onnx' is the default domain spelt out.
      ops.add(`${domain === 'ai.onnx' ? '' : domain}:${op}`);
    }
  }
  return ops;
}

/** The families of the graph's operators, joined with '+' ('lstm', 'tree-ensemble', ...), or {@link OTHER_FAMILY}. */
export function modelFamily(bytes: Uint8Array): string {
  const families = new Set<string>();
  for (const op of graphOps(bytes)) {
    const family = FAMILY_OPS[op];
    if (family) families.add(family);
  }
  return families.size === 0 ? OTHER_FAMILY : [...families].sort().join('+');
}
