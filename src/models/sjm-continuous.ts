/**
 * The state step of the continuous statistical jump model (Aydınhan, Kolm,
 * Mulvey, Shu 2024): each row gets a probability vector over the K states
 * instead of one state. The vectors come from a grid over the probability
 * simplex; a row's loss under p is Σ_k p_k·L[t,k], and moving from q to p
 * costs λ·(‖p − q‖₁/2)², so a small shift in conviction is cheap and a full
 * switch costs λ, as in the discrete model.
 *
 * The grid with one division is the K corners (one-hot vectors, switch cost
 * 1), so the discrete model is the coarsest case of this one.
 */

/** The candidate probability vectors: every p whose entries are multiples of 1/divisions. */
export interface SimplexGrid {
  readonly k: number;
  /** Number of candidates, G: C(divisions + k − 1, k − 1). */
  readonly size: number;
  /** G × k, row-major: candidate c's probability of state j is at c·k + j. */
  readonly probabilities: Float64Array;
  /** G × G: (‖p − q‖₁/2)², the switch cost before it is multiplied by λ. */
  readonly jumpCost: Float64Array;
}

/** Candidates in lexicographic order from the first corner (1, 0, …, 0) down to the last (0, …, 0, 1). */
export function simplexGrid(k: number, divisions: number): SimplexGrid {
  const units: number[][] = [];
  const parts = new Array<number>(k).fill(0);
  const fill = (state: number, left: number): void => {
    if (state === k - 1) {
      parts[state] = left;
      units.push(parts.slice());
      return;
    }
    for (let u = left; u >= 0; u--) {
      parts[state] = u;
      fill(state + 1, left - u);
    }
  };
  fill(0, divisions);

  const size = units.length;
  const probabilities = new Float64Array(size * k);
  units.forEach((point, c) => point.forEach((u, j) => (probabilities[c * k + j] = u / divisions)));
  const jumpCost = new Float64Array(size * size);
  for (let a = 0; a < size; a++) {
    for (let b = 0; b < size; b++) {
      // Distance in whole units keeps the cost exact: a full switch is exactly 1.
      let moved = 0;
      for (let j = 0; j < k; j++) moved += Math.abs(units[a]![j]! - units[b]![j]!);
      const share = moved / 2 / divisions;
      jumpCost[a * size + b] = share * share;
    }
  }
  return { k, size, probabilities, jumpCost };
}

/**
 * One forward step over the candidates: next[c] = Σ_j p_cj·loss[j] +
 * min_q(previous[q] + λ·jumpCost[q, c]). Staying wins ties, then the lowest q.
 * With `from`, writes the chosen q of each c at from[fromOffset + c].
 */
export function candidateForward(
  grid: SimplexGrid,
  lambda: number,
  loss: Float64Array,
  lossOffset: number,
  previous: Float64Array,
  previousOffset: number,
  next: Float64Array,
  from?: Int32Array,
  fromOffset = 0,
): void {
  const { k, size: G, probabilities, jumpCost } = grid;
  for (let c = 0; c < G; c++) {
    let rowLoss = 0;
    for (let j = 0; j < k; j++) rowLoss += probabilities[c * k + j]! * loss[lossOffset + j]!;
    let best = previous[previousOffset + c]!;
    let bestFrom = c;
    for (let q = 0; q < G; q++) {
      const value = previous[previousOffset + q]! + lambda * jumpCost[q * G + c]!;
      if (value < best) {
        best = value;
        bestFrom = q;
      }
    }
    next[c] = rowLoss + best;
    if (from) from[fromOffset + c] = bestFrom;
  }
}

/**
 * The candidate path minimising Σ_t Σ_j p_tj·L[t,j] + λ·Σ_t (‖p_t − p_{t−1}‖₁/2)²
 * for a T × k loss matrix: one candidate index per row. O(T·G²).
 */
export function candidateStep(grid: SimplexGrid, loss: Float64Array, T: number, lambda: number): Int32Array {
  const G = grid.size;
  const path = new Int32Array(T);
  if (T === 0) return path;
  const from = new Int32Array(T * G);
  // Starting from zeros makes the first row's values its own losses: V[0] = L[0].
  let previous = new Float64Array(G);
  let next = new Float64Array(G);
  for (let t = 0; t < T; t++) {
    candidateForward(grid, lambda, loss, t * grid.k, previous, 0, next, from, t * G);
    [previous, next] = [next, previous];
  }
  path[T - 1] = argmin(previous, 0, G);
  for (let t = T - 1; t > 0; t--) path[t - 1] = from[t * G + path[t]!]!;
  return path;
}

/** Index of the smallest of values[offset .. offset + n), the first on ties. */
export function argmin(values: Float64Array, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[offset + i]! < values[offset + best]!) best = i;
  return best;
}
