/**
 * Theory checks (paper §3, App. F.3; SPEC §5): for ΔW = W+ − W0, the measured quantity
 * beside its perturbation bound.
 * - Wedin: max(‖sin Θ(U)‖₂, ‖sin Θ(V)‖₂) ≤ ‖ΔW‖₂ / δ_k, δ_k = σ_k(W0) − σ_{k+1}(W0)
 *   (no bound when δ_k ≤ 0, or k = rank: then there is no σ_{k+1} and Θ is 0).
 *   ‖sin Θ‖₂ = sin of the largest principal angle.
 * - Weyl: max_{i≤k} |σ_i(W+) − σ_i(W0)| ≤ ‖ΔW‖₂.
 * - Hoffman–Wielandt: Σ_{i≤k} (σ_i(W+) − σ_i(W0))² ≤ ‖ΔW‖_F² (the full sum is bounded, so
 *   its top-k part is too).
 * - Ky Fan: |‖W+‖_(k) − ‖W0‖_(k)| ≤ k·‖ΔW‖₂, ‖·‖_(k) = Σ_{i≤k} σ_i.
 *
 * All four hold for every matrix pair, so a violation is a numerical error in the inputs to
 * the check. Measured values come from approximate decompositions: `holds` allows an
 * explicit `slack` (recorded) derived from the decompositions' own error estimates, so a
 * check fails only beyond what the solver itself admits to.
 */

export interface BoundCheck {
  measured: number;
  /** null when the bound is undefined (Wedin with δ_k ≤ 0 or k = rank). */
  bound: number | null;
  /** measured / bound (null when undefined or bound = 0). */
  ratio: number | null;
  /** measured ≤ bound + slack (true when the bound is undefined). */
  holds: boolean;
  slack: number;
}

export interface TheoryChecks {
  deltaFrobenius: number;
  deltaSpectral: number;
  /** σ_k(W0) − σ_{k+1}(W0) (null when k = rank). */
  gap: number | null;
  wedin: BoundCheck;
  weyl: BoundCheck;
  hoffmanWielandt: BoundCheck;
  kyFan: BoundCheck;
}

export interface TheoryInputs {
  /** Top-k singular values of W0 and W+, descending. */
  s0: ArrayLike<number>;
  s1: ArrayLike<number>;
  /** σ_{k+1}(W0), null when k = rank. */
  sigmaNext0: number | null;
  /** Largest principal angle (degrees) over U and V. */
  maxAngleDeg: number;
  deltaFrobenius: number;
  deltaSpectral: number;
  /** Absolute error allowed on singular values (from residuals), default 0. */
  sigmaSlack?: number;
  /** Error allowed on the angles (degrees, from the solver's angle bounds), default 0. */
  angleSlackDeg?: number;
}

function check(measured: number, bound: number | null, slack: number): BoundCheck {
  return {
    measured, bound,
    ratio: bound === null || bound === 0 ? null : measured / bound,
    holds: bound === null ? true : measured <= bound * (1 + 1e-12) + slack,
    slack,
  };
}

export function theoryChecks(x: TheoryInputs): TheoryChecks {
  const k = Math.min(x.s0.length, x.s1.length);
  const sSlack = x.sigmaSlack ?? 0;
  const aSlack = x.angleSlackDeg ?? 0;
  let weyl = 0, hw = 0, ky0 = 0, ky1 = 0;
  for (let i = 0; i < k; i++) {
    const d = x.s1[i]! - x.s0[i]!;
    weyl = Math.max(weyl, Math.abs(d));
    hw += d * d;
    ky0 += x.s0[i]!; ky1 += x.s1[i]!;
  }
  const gap = x.sigmaNext0 === null || k === 0 ? null : x.s0[k - 1]! - x.sigmaNext0;
  const d2 = x.deltaSpectral, dF = x.deltaFrobenius;
  const sinMax = Math.sin(Math.min(90, x.maxAngleDeg) * Math.PI / 180);
  const wedinBound = gap === null || gap <= 0 ? null : d2 / gap;
  const angleSlack = Math.sin(Math.min(90, aSlack) * Math.PI / 180);
  return {
    deltaFrobenius: dF,
    deltaSpectral: d2,
    gap,
    wedin: check(sinMax, wedinBound, angleSlack),
    weyl: check(weyl, d2, sSlack),
    hoffmanWielandt: check(hw, dF * dF, 2 * Math.sqrt(hw) * sSlack * Math.sqrt(k) + k * sSlack * sSlack),
    kyFan: check(Math.abs(ky1 - ky0), k * d2, k * sSlack),
  };
}
