"""Fit the polynomial pieces of the vectorisable erf and tanh of ``dmft/_fast_math.py`` and write them there.

erf(z), z ≥ 0, is split at z = 2 (theory.md §9.5 "Vectorised erf and exp"):

* z < 2:  erf(z) = z · P(s),  P a degree-17 polynomial in t = s/2 − 1, s = z² ∈ [0, 4];
* 2 ≤ z < 6:  erf(z) = 1 − e^{−z²} · Q(t),  Q ≈ erfcx(z) = e^{z²} erfc(z) of degree 20 in t = (z − 2)/2 − 1;
* z ≥ 6:  erf(z) = 1 (erfc(6) = 2.2e−17 is below half an ulp of 1).

tanh(x), x ≥ 0, is split at x = 0.55:

* x < 0.55:  tanh(x) = x · R(x²),  R a degree-11 polynomial in t = x²/(0.55²/2) − 1;
* x ≥ 0.55:  tanh(x) = (1 − e)/(1 + e),  e = e^{−2x} ≤ 0.333 (no cancellation).

Each piece is the Chebyshev interpolant at the roots of T_{d+1}, computed in 40-digit arithmetic
(mpmath) and converted exactly to power form in t (well conditioned on [−1, 1] because the
Chebyshev coefficients fall geometrically). The script then evaluates the result in double
precision at 20 001 points of [0, 6] against 40-digit erf and prints the largest absolute and
relative errors (expected: ≤ 2.3e−16 and ≤ 4e−16, i.e. ≤ 2 ulp, as scipy.special.erf).

Run ``python scripts/fit_fast_math.py --write`` to rewrite the generated block of
``dmft/_fast_math.py`` (between its BEGIN/END GENERATED markers); without ``--write`` it only
prints the check. Needs mpmath (installed with torch's sympy).
"""

from __future__ import annotations

import argparse
import pathlib
import re

import mpmath as mp
import numpy as np

SPLIT = 2.0          # z where the small-argument piece hands over to the erfcx piece
TOP = 6.0            # erf(z) = 1 in double precision beyond
SMALL_DEGREE = 17
LARGE_DEGREE = 20
TANH_SPLIT = 0.55    # tanh: x·R(x²) below, (1 − e^{−2x})/(1 + e^{−2x}) above
TANH_DEGREE = 11
MODULE = pathlib.Path(__file__).resolve().parents[1] / "dmft" / "_fast_math.py"


def chebyshev_interpolant(f, degree: int) -> list:
    """Chebyshev coefficients c_j of the interpolant of f on [−1, 1] at the roots of T_{degree+1}."""
    n = degree + 1
    nodes = [(k + mp.mpf(1) / 2) * mp.pi / n for k in range(n)]
    values = [f(mp.cos(a)) for a in nodes]
    coeffs = [2 * mp.fsum(v * mp.cos(j * a) for v, a in zip(values, nodes)) / n for j in range(n)]
    coeffs[0] /= 2
    return coeffs


def fit_tanh() -> list[float]:
    mp.mp.dps = 40
    s_top = TANH_SPLIT * TANH_SPLIT

    def small(t):   # tanh(x)/x at s = x² = (t + 1) s_top / 2
        s = (t + 1) * s_top / 2
        return mp.tanh(mp.sqrt(s)) / mp.sqrt(s) if s > 0 else mp.mpf(1)

    return chebyshev_power(chebyshev_interpolant(small, TANH_DEGREE))


def check_tanh(small: list[float]) -> None:
    mp.mp.dps = 40
    x = np.linspace(0.0, TANH_SPLIT, 5001)[1:]
    reference = np.array([float(mp.tanh(v)) for v in x])
    t = x * x * (2 / TANH_SPLIT**2) - 1
    r = np.full_like(t, small[-1])
    for a in small[-2::-1]:
        r = r * t + a
    relative = np.abs(x * r - reference) / reference
    print(f"tanh, x < {TANH_SPLIT}: largest relative error {relative.max():.2e}")


def fit() -> tuple[list[float], list[float]]:
    mp.mp.dps = 40
    s_top = SPLIT * SPLIT

    def small(t):   # erf(z)/z at s = z² = (t + 1) s_top / 2
        s = (t + 1) * s_top / 2
        return mp.erf(mp.sqrt(s)) / mp.sqrt(s) if s > 0 else 2 / mp.sqrt(mp.pi)

    def large(t):   # erfcx(z) at z = (t + 1)(TOP − SPLIT)/2 + SPLIT
        z = (t + 1) * (TOP - SPLIT) / 2 + SPLIT
        return mp.exp(z * z) * mp.erfc(z)

    return (chebyshev_power(chebyshev_interpolant(small, SMALL_DEGREE)),
            chebyshev_power(chebyshev_interpolant(large, LARGE_DEGREE)))


def chebyshev_power(coeffs: list) -> list[float]:
    """Power-form coefficients of Σ_j c_j T_j(t), summed exactly in mpmath."""
    t_polys = [[mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]]
    while len(t_polys) < len(coeffs):
        doubled = [mp.mpf(0)] + [2 * a for a in t_polys[-1]]
        older = t_polys[-2] + [mp.mpf(0)] * (len(doubled) - len(t_polys[-2]))
        t_polys.append([a - b for a, b in zip(doubled, older)])
    power = [mp.mpf(0)] * len(coeffs)
    for c, poly in zip(coeffs, t_polys):
        for i, a in enumerate(poly):
            power[i] += c * a
    return [float(a) for a in power]


def horner_source(name: str, coeffs: list[float], doc: str) -> str:
    """Source of a Numba function evaluating Σ_i coeffs[i] t^i by Horner's rule, one line per step
    (an explicit chain: a loop over a coefficient tuple would keep LLVM from vectorising the caller)."""
    lines = ["@njit(cache=True, inline=\"always\", fastmath=_CONTRACT)", f"def {name}(t):",
             f"    \"\"\"{doc}\"\"\"", f"    p = {coeffs[-1]!r}"]
    lines += [f"    p = p * t + {a!r}" for a in coeffs[-2::-1]]
    lines.append("    return p")
    return "\n".join(lines) + "\n"


def check(small: list[float], large: list[float]) -> None:
    mp.mp.dps = 40
    z = np.linspace(0.0, TOP, 20001)
    reference = np.array([float(mp.erf(v)) for v in z])

    def horner(c, t):
        r = np.full_like(t, c[-1])
        for a in c[-2::-1]:
            r = r * t + a
        return r

    approx = np.where(z < SPLIT, z * horner(small, z * z * (2 / SPLIT**2) - 1),
                      1 - np.exp(-z * z) * horner(large, (z - SPLIT) * (2 / (TOP - SPLIT)) - 1))
    error = np.abs(approx - reference)
    relative = error[1:] / reference[1:]
    print(f"largest absolute error {error.max():.2e} (at z = {z[error.argmax()]:.4f}), "
          f"largest relative error {relative.max():.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the generated block of dmft/_fast_math.py")
    opts = parser.parse_args()
    small, large = fit()
    check(small, large)
    tanh_small = fit_tanh()
    check_tanh(tanh_small)
    if opts.write:
        block = (horner_source("_erf_over_z", small, f"erf(z)/z for z < {SPLIT:g}, t = z²/{SPLIT**2 / 2:g} − 1 "
                               f"(degree {SMALL_DEGREE})")
                 + "\n\n" + horner_source("_erfcx", large, f"erfcx(z) = e^(z²) erfc(z) for {SPLIT:g} ≤ z ≤ {TOP:g}, "
                                          f"t = (z − {SPLIT:g})/{(TOP - SPLIT) / 2:g} − 1 (degree {LARGE_DEGREE})")
                 + "\n\n" + horner_source("_tanh_over_x", tanh_small, f"tanh(x)/x for x < {TANH_SPLIT:g}, "
                                          f"t = x²/{TANH_SPLIT**2 / 2:g} − 1 (degree {TANH_DEGREE})"))
        text = MODULE.read_text()
        new = re.sub(r"(# BEGIN GENERATED[^\n]*\n).*?(# END GENERATED)", lambda m: m.group(1) + block + m.group(2),
                     text, flags=re.S)
        MODULE.write_text(new)
        print(f"wrote {MODULE}")


if __name__ == "__main__":
    main()
