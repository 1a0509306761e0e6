/**
 * The standard normal distribution, to double precision in both tails: the
 * option formulas subtract and divide these, so a crude CDF (the usual
 * 1e-7 polynomial) would cap how far out the wings an implied volatility
 * can be solved.
 *
 * The CDF is exp(-z²/2) times a piecewise Chebyshev series for the scaled
 * tail Φ(-z)·exp(z²/2), fitted for keel (relative error < 4e-16 for every
 * z). The scaled form is what the implied-volatility code needs to work with
 * prices so small that their Gaussian factor underflows.
 */

export const SQRT_2PI = Math.sqrt(2 * Math.PI);
const INV_SQRT_2PI = 1 / SQRT_2PI;

/** The density φ(z). */
export function pdf(z: number): number {
  return INV_SQRT_2PI * Math.exp(-0.5 * z * z);
}

// Chebyshev coefficients (degree 14) of Φ(-z)·exp(z²/2) on [i, i+1], i = 0..7, fitted
// to 50 digits with mpmath for keel; relative error below 4e-16 everywhere.
const TAIL_DEGREE = 14;
const INTERVALS = new Float64Array([
  0.36501631907799365, -0.11738909144196367, 0.015583570889242693, -0.0018037370485171097, 0.0001876609133280152, -1.789316131304388e-05, 1.5846618415901853e-06, -1.31640500749627e-07, 1.0334910768887118e-08, -7.713674430538782e-10, 5.499655948803581e-11, -3.760531069701094e-12, 2.4742681931268594e-13, -1.570918628112314e-14, 9.614983735563051e-16,
  0.2102771908607303, -0.04633240725519158, 0.004529553131462607, -0.00040316284359988123, 3.32150451069782e-05, -2.56224426351041e-06, 1.866485977765655e-07, -1.2923463838641052e-08, 8.549223972962733e-10, -5.426130699690443e-11, 3.3157327776300814e-12, -1.95643974944217e-13, 1.1174743465858962e-14, -6.19196749988527e-16, 3.3258550134412635e-17,
  0.1430615175238163, -0.023171234862431434, 0.0017382904566013257, -0.00012227436467701267, 8.13545884595632e-06, -5.153803811332344e-07, 3.1247501326910195e-08, -1.8207400598208361e-09, 1.0230783880500222e-10, -5.559552248879249e-12, 2.928841503425621e-13, -1.4989435627214983e-14, 7.466176659428489e-16, -3.6251580160180354e-17, 1.7146622849194641e-18,
  0.10715118196905828, -0.01350525152641871, 0.0008085637020471048, -4.626701020837462e-05, 2.5422456645147432e-06, -1.3464706046657204e-07, 6.895447448569165e-09, -3.423321224259402e-10, 1.6512634057989437e-11, -7.753517102726223e-13, 3.54991271714222e-14, -1.5871152303244403e-15, 6.93799694929593e-17, -2.96890262240036e-18, 1.2428744443013957e-19,
  0.08523322842095417, -0.008725042161387142, 0.00043078862605609063, -2.0582905314049662e-05, 9.541987977788283e-07, -4.301566314493627e-08, 1.889281960595601e-09, -8.097772657182936e-11, 3.392031090557856e-12, -1.390378006057004e-13, 5.583122169558469e-15, -2.1985361914587397e-16, 8.49767050835055e-18, -3.2265279263950934e-19, 1.2028007738059922e-20,
  0.07059559000407421, -0.00605964729706441, 0.0002533071984130912, -1.0331941317905784e-05, 4.118325064133977e-07, -1.6063858020761547e-08, 6.138851632560017e-10, -2.3008741742595905e-11, 8.466024045928949e-13, -3.060685981406539e-14, 1.0880469106309477e-15, -3.8060360680603834e-17, 1.3109174773077927e-18, -4.448487450630773e-20, 1.4864713468083215e-21,
  0.060175838776432906, -0.004437222232568296, 0.00016036129118166293, -5.686919149054923e-06, 1.9808615232312453e-07, -6.782650825368997e-09, 2.2847901454983428e-10, -7.577002461324687e-12, 2.4753074094302947e-13, -7.970669459895846e-15, 2.5312064192711037e-16, -7.931271023318033e-18, 2.4532400602301608e-19, -7.49384130758224e-21, 2.259580744047478e-22,
  0.05240045192876004, -0.0033821012722548356, 0.00010745850926559148, -3.36368000400603e-06, 1.0379349627856596e-07, -3.1589831588953175e-09, 9.48783492128888e-11, -2.813413812442963e-12, 8.240164240075208e-14, -2.3847870641061815e-15, 6.822422683176037e-17, -1.9299940630365826e-18, 5.40063760722588e-20, -1.4953408367013379e-21, 4.094982684450044e-23,
]);
// Beyond 8: z·Φ(-z)·exp(z²/2) as a degree-10 Chebyshev series in w = 64/z² on [0, 1].
const ASYMPTOTIC = new Float64Array([
  0.3959285907669989, -0.0029803720277977197, 3.272009702672454e-05, -5.828903299883247e-07, 1.4170619578556398e-08, -4.3222500330273653e-10, 1.5739326745825597e-11, -6.622344837503714e-13, 3.145904809438094e-14, -1.658529286114946e-15, 9.53654129460579e-17,
]);

/*
 * Allocation-free forms. A double passed to or returned from a call that V8
 * does not inline is boxed into a heap number, and the implied-volatility
 * solver and the chain's batch call these too often, from code too large for
 * V8 to inline whole, to make garbage there. So the forms they call take
 * their arguments from, and leave their results in, the fields of
 * module-level objects, which hold doubles unboxed; scaledTail, cdf and
 * inverseCdf below wrap them for everyone else. Single-threaded and not
 * re-entrant: read a result before the next call.
 */

/** In and out of scaledTailAt: z ≥ 0 in, value = Φ(-z)·exp(z²/2) out. */
export const tailIo = { z: NaN, value: NaN };

/** Φ(-z)·exp(z²/2) for z ≥ 0: the lower tail without its Gaussian factor (never underflows). */
export function scaledTailAt(): void {
  const io = tailIo; // a local alias: each use of a module-level constant also checks it is initialised, bytecode V8's inlining counts
  const z = io.z;
  // Clenshaw's recurrence, a loop for each series so that each runs over a constant array and degree.
  let b1 = 0;
  let b2 = 0;
  if (z < 8) {
    const i = Math.floor(z);
    const from = i * (TAIL_DEGREE + 1);
    const t = 2 * (z - i) - 1;
    for (let j = from + TAIL_DEGREE; j > from; j--) {
      const b0 = 2 * t * b1 - b2 + INTERVALS[j]!;
      b2 = b1;
      b1 = b0;
    }
    io.value = t * b1 - b2 + INTERVALS[from]!;
  } else {
    const t = 128 / (z * z) - 1;
    for (let j = ASYMPTOTIC.length - 1; j > 0; j--) {
      const b0 = 2 * t * b1 - b2 + ASYMPTOTIC[j]!;
      b2 = b1;
      b1 = b0;
    }
    io.value = (t * b1 - b2 + ASYMPTOTIC[0]!) / z;
  }
}

/** In and out of cdfAt (z in; p = Φ(z) and density = φ(z) out) and quantileAt (p in; z = Φ⁻¹(p) out). */
export const normalIo = { z: NaN, p: NaN, density: NaN };

/** Φ(z) and φ(z) of normalIo.z, with full relative precision in the lower tail (down to about -38, where it underflows). */
export function cdfAt(): void {
  const io = normalIo;
  const z = io.z;
  const a = Math.abs(z);
  if (!(a <= 38.5)) {
    // The tail underflows (or z is NaN).
    io.p = Number.isNaN(z) ? NaN : z < 0 ? 0 : 1;
    io.density = INV_SQRT_2PI * Math.exp(-0.5 * z * z);
    return;
  }
  tailIo.z = a;
  scaledTailAt();
  const gauss = Math.exp(-0.5 * a * a);
  const tail = gauss * tailIo.value;
  io.p = z < 0 ? tail : 1 - tail;
  io.density = INV_SQRT_2PI * gauss;
}

/**
 * Φ⁻¹ of normalIo.p: Acklam's rational start, then one Halley step on Φ,
 * which brings it to about machine precision. Only the implied-volatility
 * start uses it.
 */
export function quantileAt(): void {
  const io = normalIo;
  const p = io.p;
  if (!(p > 0 && p < 1)) {
    io.z = p === 0 ? -Infinity : p === 1 ? Infinity : NaN;
    return;
  }
  const low = 0.024_25;
  let x: number;
  if (p < low || p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(p < low ? p : 1 - p));
    const n = ((((-0.007_784_894_002_430_293 * q - 0.322_396_458_041_136_5) * q - 2.400_758_277_161_838) * q - 2.549_732_539_343_734) * q + 4.374_664_141_464_968) * q + 2.938_163_982_698_783;
    const d = (((0.007_784_695_709_041_462 * q + 0.322_467_129_070_039_8) * q + 2.445_134_137_142_996) * q + 3.754_408_661_907_416) * q + 1;
    x = p < low ? n / d : -n / d;
  } else {
    const q = p - 0.5;
    const r = q * q;
    const n = (((((-39.696_830_286_653_76 * r + 220.946_098_424_520_5) * r - 275.928_510_446_968_7) * r + 138.357_751_867_269) * r - 30.664_798_066_147_16) * r + 2.506_628_277_459_239) * q;
    const d = ((((-54.476_098_798_224_06 * r + 161.585_836_858_040_9) * r - 155.698_979_859_886_6) * r + 66.801_311_887_719_72) * r - 13.280_681_552_885_72) * r + 1;
    x = n / d;
  }
  // Halley on e = Φ(x) - p; the upper half computes e from complements so it keeps its precision.
  io.z = p < 0.5 ? x : -x;
  cdfAt();
  const e = p < 0.5 ? io.p - p : 1 - p - io.p;
  const u = e * SQRT_2PI * Math.exp(0.5 * x * x);
  io.z = x - u / (1 + 0.5 * x * u);
}

/** Φ(-z)·exp(z²/2) for z ≥ 0 (see scaledTailAt). */
export function scaledTail(z: number): number {
  tailIo.z = z;
  scaledTailAt();
  return tailIo.value;
}

/** Φ(z) (see cdfAt). */
export function cdf(z: number): number {
  normalIo.z = z;
  cdfAt();
  return normalIo.p;
}

/** Φ⁻¹(p) (see quantileAt). */
export function inverseCdf(p: number): number {
  normalIo.p = p;
  quantileAt();
  return normalIo.z;
}

// Gauss–Legendre nodes and weights on [-1, 1], computed once by Newton on the Legendre polynomial.
function gaussLegendre(n: number): { nodes: Float64Array; weights: Float64Array } {
  const nodes = new Float64Array(n);
  const weights = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let iter = 0; iter < 100; iter++) {
      let p0 = 1;
      let p1 = x;
      for (let k = 2; k <= n; k++) {
        const p2 = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
        p0 = p1;
        p1 = p2;
      }
      dp = (n * (x * p1 - p0)) / (x * x - 1);
      const dx = p1 / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-16) break;
    }
    nodes[i] = x;
    weights[i] = 2 / ((1 - x * x) * dp * dp);
  }
  return { nodes, weights };
}

const GL = gaussLegendre(24);

/**
 * The bivariate normal CDF M(a, b; ρ) by Plackett's identity, ∂M/∂ρ = φ₂:
 * M = Φ(a)Φ(b) + 1/2π ∫₀^{asin ρ} exp(-(a² + b² - 2ab sin θ) / (2 cos² θ)) dθ,
 * integrated by 24-point Gauss–Legendre. Accurate to ~1e-15 for |ρ| ≤ 0.9
 * (Bjerksund–Stensland uses only ±0.786); beyond, the integrand's peak needs
 * Genz's transformation, which keel does not need and so does not have.
 */
export function bivariateCdf(a: number, b: number, rho: number): number {
  if (!(Math.abs(rho) <= 0.9)) throw new RangeError(`bivariateCdf: |rho| ${rho} above 0.9 is not supported`);
  const end = Math.asin(rho);
  const half = 0.5 * end;
  const ab = a * b;
  const sum2 = a * a + b * b;
  let integral = 0;
  for (let i = 0; i < GL.nodes.length; i++) {
    const theta = half * (GL.nodes[i]! + 1);
    const s = Math.sin(theta);
    const c2 = 1 - s * s;
    integral += GL.weights[i]! * Math.exp(-(sum2 - 2 * ab * s) / (2 * c2));
  }
  return cdf(a) * cdf(b) + (integral * half) / (2 * Math.PI);
}
