"""The SIMD exp and erf of the data-side kernel (dmft/_fast_math.py, theory.md §9.5) against
independent references: scipy.special (Cephes) and 40-digit mpmath.

Tolerances: both functions are built to be as accurate as libm (≤ 2 ulp); the bounds below are
a few ulp (4.5e-16 relative, 2.5e-16 absolute for erf near ±1), so a wrong coefficient, a lost
range reduction or a missed branch fails by many orders of magnitude.
"""

import math

import mpmath
import numpy as np
import pytest
import scipy.special
from numba import njit
from numpy.testing import assert_allclose, assert_array_equal

from dmft._fast_math import erf_and_gaussian, exp_nonpositive, normal_cdf_and_gaussian
from dmft._data_kernels import _inverse_block
from dmft._fast_math import tanh as simd_tanh

ULP = np.finfo(float).eps


@njit(cache=True)
def _pairs(x, function):
    """erf_and_gaussian (function 0) or normal_cdf_and_gaussian (function 1) of every entry."""
    value = np.empty_like(x)
    gaussian = np.empty_like(x)
    for b in range(x.size):
        value[b], gaussian[b] = erf_and_gaussian(x[b]) if function == 0 else normal_cdf_and_gaussian(x[b])
    return value, gaussian


def _erf_gaussian_array(x):
    return _pairs(x, 0)


def _normal_cdf_array(z):
    return _pairs(z, 1)


@njit(cache=True)
def _elementwise(x, function):
    """exp_nonpositive (function 0) or tanh (function 1) of every entry, one call each."""
    out = np.empty_like(x)
    for b in range(x.size):
        out[b] = exp_nonpositive(x[b]) if function == 0 else simd_tanh(x[b])
    return out


def _exp_array(w):
    return _elementwise(w, 0)


def _tanh_array(x):
    return _elementwise(x, 1)


def _fields():
    rng = np.random.default_rng(20261127)
    # the piece boundaries z = |x|/√2 = 2 and 6 (x = 2√2, 6√2) and their neighbours, a dense
    # sweep, and Gaussian draws of the widths the data side meets
    edges = np.array([2 * math.sqrt(2), 6 * math.sqrt(2)])
    near = np.concatenate([np.nextafter(edges, 0), edges, np.nextafter(edges, 20)])
    return np.concatenate([np.linspace(-12, 12, 240_001), near, -near, rng.normal(size=100_000) * 3])


def test_exp_matches_numpy_to_two_ulp_over_the_whole_nonpositive_range():
    w = np.concatenate([-np.linspace(0, 708, 700_001), -np.geomspace(1e-300, 1e-3, 1000), [0.0, -0.0]])
    assert_allclose(_exp_array(w), np.exp(w), rtol=2 * ULP, atol=0)


def test_exp_underflow_and_special_values():
    # below w = −708 the result is 0 (the true values are subnormal, < 3.4e−308); NaN propagates
    w = np.array([-708.5, -745.0, -1e6, -np.inf, np.nan])
    out = _exp_array(w)
    assert_array_equal(out[:4], 0.0)
    assert np.isnan(out[4])
    assert np.exp(-708.0) < 3.4e-308


def test_erf_and_gaussian_match_scipy_to_a_few_ulp():
    x = _fields()
    value, gaussian = _erf_gaussian_array(x)
    assert_allclose(value, scipy.special.erf(x / math.sqrt(2)), rtol=4.5e-16, atol=2.5e-16)
    assert_allclose(gaussian, np.exp(-0.5 * x * x), rtol=2 * ULP, atol=0)


def test_erf_against_40_digit_references_at_the_piece_boundaries_and_in_the_tails():
    mpmath.mp.dps = 40
    x = np.array([1e-300, 1e-8, 0.3, 1.0, 2.0, 2 * math.sqrt(2) * (1 - 1e-15), 2 * math.sqrt(2), 3.5, 5.0,
                  6 * math.sqrt(2) * (1 - 1e-15), 6 * math.sqrt(2), 9.0, 40.0])
    reference = np.array([float(mpmath.erf(mpmath.mpf(v) / mpmath.sqrt(2))) for v in x])
    value, _ = _erf_gaussian_array(np.concatenate([x, -x]))
    # relative 4.5e-16 near 0 (erf is odd: P is a series in z², so it keeps relative accuracy)
    assert_allclose(value[: x.size], reference, rtol=4.5e-16, atol=0)
    assert_array_equal(value[x.size:], -value[: x.size])


def test_erf_special_values():
    value, gaussian = _erf_gaussian_array(np.array([0.0, -0.0, np.inf, -np.inf, np.nan]))
    assert_array_equal(value[:4], [0.0, -0.0, 1.0, -1.0])
    assert math.copysign(1.0, value[1]) == -1.0
    assert_array_equal(gaussian[:4], [1.0, 1.0, 0.0, 0.0])
    assert np.isnan(value[4]) and np.isnan(gaussian[4])


def _host_has_fma_and_avx2() -> bool:
    from llvmlite import binding

    features = binding.get_host_cpu_features()
    return bool(features.get("fma")) and bool(features.get("avx2"))


@pytest.mark.skipif(not _host_has_fma_and_avx2(), reason="the CPU has no packed FMA (AVX2 + FMA) to check for")
def test_a_block_loop_over_them_vectorises():
    """The point of the module: a loop over samples that calls these functions compiles to SIMD
    code (packed double-precision multiply-adds on ymm/zmm registers), which libm's scalar
    math.erf/math.exp calls prevent. Compiled as the kernel compiles (fastmath "contract"), not cached,
    so that its assembly is at hand."""

    @njit(fastmath={"contract"})
    def block(x, value, slope):
        for b in range(x.size):
            value[b], gaussian = erf_and_gaussian(x[b])
            slope[b] = exp_nonpositive(-x[b]) * gaussian

    x = np.linspace(0.0, 3.0, 64)
    block(x, np.empty(64), np.empty(64))
    assembly = "".join(block.inspect_asm().values())
    # Every fused multiply-add form (LLVM folds signs into vfnmadd / vfmsub as it sees fit; numba
    # 0.68 / llvmlite 0.50 emits 11 vfmadd + 5 of the others where older versions emitted >= 20
    # vfmadd). Packed = on ymm/zmm registers (the vectorised body), scalar = "sd" on xmm (one scalar
    # copy of the body, the remainder loop, where LLVM emits one).
    forms = [f"{kind}{order}" for kind in ("vfmadd", "vfmsub", "vfnmadd", "vfnmsub") for order in ("132", "213", "231")]
    packed = sum(assembly.count(f"{form}pd\t%{reg}") for form in forms for reg in ("ymm", "zmm"))
    scalar = sum(assembly.count(f"{form}sd\t%xmm") for form in forms)
    # The vectorised body carries at least 3/4 of the scalar body's multiply-adds (a body left
    # scalar has none packed), and the polynomial kernels of erf and exp need well over 8.
    assert packed >= 8 and packed >= 0.75 * scalar, f"{packed} packed against {scalar} scalar FMAs in the block loop"


def test_tanh_matches_numpy_to_a_few_ulp_and_keeps_relative_accuracy_near_zero():
    rng = np.random.default_rng(7)
    split = np.array([0.55])
    x = np.concatenate([np.linspace(-25, 25, 500_001), np.geomspace(1e-300, 1.0, 2000), np.nextafter(split, 0),
                        split, np.nextafter(split, 1), rng.normal(size=100_000) * 2])
    x = np.concatenate([x, -x])
    # relative, everywhere: the polynomial piece keeps it near 0, the (1 − e)/(1 + e) piece has
    # e ≤ 1/3, so no cancellation (4 ulp: exp's 2, the quotient's 2)
    assert_allclose(_tanh_array(x), np.tanh(x), rtol=4 * ULP, atol=0)
    mpmath.mp.dps = 40
    points = np.array([1e-8, 0.1, 0.5499, 0.55, 0.8, 3.0, 19.0])
    reference = np.array([float(mpmath.tanh(mpmath.mpf(v))) for v in points])
    assert_allclose(_tanh_array(points), reference, rtol=4 * ULP, atol=0)
    special = _tanh_array(np.array([0.0, -0.0, np.inf, -np.inf, np.nan]))
    assert_array_equal(special[:4], [0.0, -0.0, 1.0, -1.0])
    assert math.copysign(1.0, special[1]) == -1.0 and np.isnan(special[4])


def test_normal_cdf_keeps_relative_accuracy_in_the_lower_tail():
    """Φ for the smoothed ReLU: the upper half to 2 ulp absolute; the lower tail relative to
    scipy.special.ndtr, 1e-13 where erfc comes from the fitted erfcx (a few times its 4e-14) and
    1e-6 beyond z = −6√2, where the 5-term asymptotic series of erfcx is used (truncation 5e-7)."""
    z = np.concatenate([np.linspace(-37, 12, 400_001), [-2 * math.sqrt(2), -6 * math.sqrt(2)]])
    cdf, gaussian = _normal_cdf_array(z)
    reference = scipy.special.ndtr(z)
    upper, middle, tail = z >= 0, (z < 0) & (z > -6 * math.sqrt(2)), z <= -6 * math.sqrt(2)
    assert_allclose(cdf[upper], reference[upper], rtol=0, atol=2 * ULP)
    assert_allclose(cdf[middle], reference[middle], rtol=1e-13, atol=0)
    assert_allclose(cdf[tail], reference[tail], rtol=1e-6, atol=0)
    assert_allclose(gaussian, np.exp(-0.5 * z * z), rtol=2 * ULP, atol=0)
    special, _ = _normal_cdf_array(np.array([np.inf, -np.inf, np.nan]))
    assert_array_equal(special[:2], [1.0, 0.0])
    assert np.isnan(special[2])


@njit(cache=True)
def _block_inverses(A):
    """The kernel's per-sample inverse (``_inverse_block``) over a block A (N, N, B)."""
    N, _, B = A.shape
    Ainv = np.empty_like(A)
    _inverse_block(A, Ainv, np.empty((N, N)), np.empty((N, N)), np.empty((N, 2 * N)), np.empty((N, N, B)),
                   np.empty((2, B)), np.empty(B, dtype=np.bool_))
    return Ainv


def test_block_inverse_is_the_pivoting_inverse_and_falls_back_where_a_row_exchange_is_needed():
    """The data side's N ≥ 3 inverse of A = I − aχJ (dmft/_data_kernels.py): vectorised Gauss–Jordan
    without row exchanges, a sample whose pivot is small redone with partial pivoting. Against
    numpy.linalg.inv (LAPACK), 1e-13 relative: near-identity samples (the vectorised path) and, in the
    same block, samples that need row exchanges or have a zero leading pivot (the fallback)."""
    rng = np.random.default_rng(3)
    for N in (3, 4, 6):
        B = 32
        A = np.eye(N)[:, :, None] + 0.3 * rng.normal(size=(N, N, B))
        A[:, :, 5] = np.roll(np.eye(N), 1, axis=0) + 1e-3 * rng.normal(size=(N, N))   # permutation-like
        A[0, 0, 9] = 0.0                                                               # zero first pivot
        A[1, 0, 9] = 2.0
        inverses = _block_inverses(A)
        for b in range(B):
            reference = np.linalg.inv(A[:, :, b])
            assert_allclose(inverses[:, :, b], reference, rtol=0, atol=1e-13 * np.abs(reference).max(),
                            err_msg=f"N={N}, sample {b}")
