"""Activations of the committee machine and their Gaussian expectations.

An :class:`Activation` bundles φ, φ′ and φ″ (vectorised numpy callables) with a ``family`` tag
that selects closed forms of the Gaussian integrals the online theory needs
(theory.md §10.4):

* ``I2(C)  = E[φ_a(u) φ_b(w)]``                        (population loss),
* ``I2′(C) = E[φ_a′(u) φ_b′(w)]``                      (output noise in the SGD term),
* ``I3(C)  = E[φ_a′(u) v φ_b(w)]``                     (gradient flow of Q and R),
* ``I4(C)  = E[φ_a′(u) φ_b′(v) φ_c(w) φ_d(z)]``        (the O(η₀) term of online SGD),

for zero-mean jointly Gaussian variables with covariance C (shape ``(..., k, k)``, k = 2, 3, 4;
every function broadcasts over the leading axes).

Closed forms (used when every activation involved belongs to the family):

* ``erf`` (φ = erf(h/√2)): arcsine formulas of Saad & Solla (1995) for I2, I2′, I3, I4;
* ``relu``: arc-cosine kernel (Cho & Saul 2009) for I2, Θ–Θ arcsine for I2′, and I3 by Stein's
  lemma with E[δ(u) relu(w)] = √(C₁₁C₂₂ − C₁₂²)/(2πC₁₁); the Gaussian-smoothed ReLU of width s
  (:func:`smoothed_relu`, φ_s(h) = E_z[relu(h + sz)]) belongs to this family: each of its pair
  expectations is ReLU's at the covariance C + diag(s_a², s_b²) (theory.md §10.9);
* ``polynomial`` (``linear``, ``quadratic``, ``square``, any coefficients): exact Gaussian
  moments (Isserlis recursion) for I2, I2′, I3; I4 by Gauss–Hermite quadrature with enough nodes
  to be exact for the polynomial degree.

Otherwise (``tanh``, user functions, mixed families) a tensor-product rule over a factor of C is
used: over the Cholesky factor for I2 and I2′; for I3 the middle variable v is regressed on (u, w),
E[φ_a′(u) v φ_b(w)] = E[φ_a′(u)(γ₁z₁ + γ₂z₂)φ_b(w)] with (u, w) = L z, so that only φ′ and φ are
needed; for I4 over the eigen-factor of C (which tolerates the singular C of coinciding fields). The
rule of I2, I2′, I3 and the 1-d means is the trapezoid rule in z (:func:`trapezoid_rule`) where
every function has a known analytic strip (``tanh``: |Im h| < π/2; erf, polynomials; user functions
given ``strip``): its step shrinks with the scale of L, and it is exact to rounding at every
variance (tanh × tanh, erf, square at variance 12: 3e-15, where the 128-node Gauss–Hermite rule used
before was off by 1.3e-4). Elsewhere Gauss–Hermite (128 nodes per axis), which converges
geometrically for analytic φ, but at a rate that falls with the variance for φ with complex
singularities. Across the kink of ReLU it converges only algebraically, which is why ReLU's closed
forms are used whenever they exist (ReLU's I4 too, through Gaussian orthant moments,
:mod:`dmft.orthant`, and ReLU × polynomial pairs, :func:`_relu_polynomial_pair`, and ReLU × odd
pairs such as erf and tanh, which parity reduces to 1-d smooth expectations, :func:`_relu_odd_pair`;
ReLU × other user functions fall back to quadrature and are accurate to ~1e-3 only). The I4 of an
erf student is exact for any partner (a Gaussian tilt reduces it to a pair expectation), and that of
a ReLU student with erf partners too (erf(z/√2) = 2P(z − ξ > 0) − 1 turns each erf factor into one
more orthant indicator); ReLU against other families in I4 is quadrature.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numpy.polynomial import hermite_e
from scipy.special import erf as _erf
from scipy.special import erfc as _erfc

from .orthant import orthant_probability, truncated_first_moment, truncated_second_moment
from .parameters import InvalidParameterError

__all__ = [
    "Activation",
    "quadratic",
    "square",
    "linear",
    "polynomial",
    "erf",
    "relu",
    "smoothed_relu",
    "tanh",
    "custom",
    "get_activation",
    "ACTIVATION_NAMES",
    "gauss_hermite",
    "gauss_hermite_tensor",
    "tensor_rule",
    "trapezoid_rule",
    "joint_trapezoid_rule",
    "eigen_factor",
    "analytic_strip",
    "mean_value",
    "mean_slope",
    "pair_expectation",
    "i2",
    "i2_prime",
    "i3",
    "i3_shared",
    "i4",
    "closed_form_i4",
    "parity",
]

#: Default Gauss–Hermite nodes per axis for the 1-, 2- and 4-dimensional fallback rules.
GH_NODES_2D = 128
GH_NODES_4D = 20
#: Nodes × covariances that :func:`i4` evaluates at once.
_I4_CHUNK_VALUES = 1 << 22


@dataclass(frozen=True)
class Activation:
    """An activation φ with its first two derivatives.

    Parameters
    ----------
    name : str
        Label (``"erf"``, ``"relu"``, ``"quadratic"``, ...).
    phi, dphi, ddphi : callable
        Vectorised numpy callables φ, φ′, φ″ (for ReLU φ″ = 0 away from the kink; its δ at 0 is
        carried by the closed forms).
    family : str
        ``"erf"``, ``"relu"``, ``"polynomial"`` or ``"quadrature"`` (Gauss–Hermite fallback).
    coefficients : tuple of float, optional
        Polynomial coefficients a_0, a_1, ... of φ(h) = Σ a_k h^k (``family == "polynomial"``).
    smoothing : float
        Width s ≥ 0 of the Gaussian smoothing of a ``relu`` family member (0: the ReLU itself).
    strip : float or None
        Half-width d of a strip |Im h| < d around the real axis in which φ, φ′ and φ″ are analytic
        and bounded (``tanh``: π/2, its nearest poles being ±iπ/2). Where every function of a
        quadrature-family expectation has a known strip, the trapezoid rule of
        :func:`trapezoid_rule` replaces Gauss–Hermite; None (user functions by default): unknown.
    """

    name: str
    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    ddphi: Callable[[np.ndarray], np.ndarray]
    family: str = "quadrature"
    coefficients: tuple[float, ...] | None = None
    smoothing: float = 0.0
    strip: float | None = None

    def __post_init__(self) -> None:
        if self.family not in ("erf", "relu", "polynomial", "quadrature"):
            raise ValueError(f"unknown activation family {self.family!r}")
        if not (math.isfinite(self.smoothing) and self.smoothing >= 0):
            raise ValueError(f"smoothing must be a finite width >= 0, got {self.smoothing!r}")
        if self.smoothing and self.family != "relu":
            raise ValueError("smoothing applies to the relu family only")
        if self.strip is not None and not (self.strip > 0):
            raise ValueError(f"strip must be a half-width > 0 (or None: unknown), got {self.strip!r}")
        if self.family == "polynomial":
            if not self.coefficients:
                raise ValueError("a polynomial activation needs its coefficients")
            object.__setattr__(self, "coefficients", tuple(float(c) for c in self.coefficients))

    def __call__(self, h):
        return self.phi(h)

    @property
    def base_name(self) -> str:
        """The name without parameters: ``"smoothed_relu"`` for a smoothed ReLU of any width (it
        selects the compiled kernel and the torch twin, which take the width as their parameter),
        else :attr:`name`."""
        return "smoothed_relu" if self.smoothing else self.name

    @property
    def parameter(self) -> float:
        """The one number the compiled and torch twins need besides :attr:`base_name`: the width of a
        smoothed ReLU, ε of the quadratic student (read from its coefficients), else 0."""
        if self.smoothing:
            return self.smoothing
        if self.name == "quadratic":
            return 2.0 * self.coefficients[2]
        return 0.0

    @property
    def degree(self) -> int | None:
        """Polynomial degree (None unless ``family == "polynomial"``)."""
        return None if self.coefficients is None else len(self.coefficients) - 1


# --- the catalogue -----------------------------------------------------------------------------


def polynomial(coefficients, name: str = "polynomial") -> Activation:
    """φ(h) = Σ_k a_k h^k from the coefficients (a_0, a_1, ...)."""
    a = np.asarray(coefficients, dtype=float)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError(f"polynomial coefficients must be a finite 1-d sequence, got {coefficients!r}")
    p = np.polynomial.Polynomial(a)
    dp, ddp = p.deriv(1), p.deriv(2)
    return Activation(
        name=name,
        phi=lambda h: p(np.asarray(h, dtype=float)),
        dphi=lambda h: dp(np.asarray(h, dtype=float)) + 0.0 * np.asarray(h, dtype=float),
        ddphi=lambda h: ddp(np.asarray(h, dtype=float)) + 0.0 * np.asarray(h, dtype=float),
        family="polynomial",
        coefficients=tuple(a),
    )


def quadratic(epsilon: float) -> Activation:
    """The package's default student φ(h) = h + (ε/2)h² (theory.md §0)."""
    return polynomial([0.0, 1.0, 0.5 * float(epsilon)], name="quadratic")


def square() -> Activation:
    """φ*(h) = h²/2: the teacher of the default target y = (β·x)²/2."""
    return polynomial([0.0, 0.0, 0.5], name="square")


def linear() -> Activation:
    """φ(h) = h."""
    return polynomial([0.0, 1.0], name="linear")


_SQRT2 = math.sqrt(2.0)
_ERF_SLOPE = math.sqrt(2.0 / math.pi)


def erf() -> Activation:
    """φ(h) = erf(h/√2), the soft committee machine's activation (Saad & Solla 1995)."""
    return Activation(
        name="erf",
        phi=lambda h: _erf(np.asarray(h, dtype=float) / _SQRT2),
        dphi=lambda h: _ERF_SLOPE * np.exp(-0.5 * np.asarray(h, dtype=float) ** 2),
        ddphi=lambda h: -np.asarray(h, dtype=float) * _ERF_SLOPE * np.exp(-0.5 * np.asarray(h, dtype=float) ** 2),
        family="erf",
    )


def relu() -> Activation:
    """φ(h) = max(h, 0) (φ′ = Θ(h), φ″ = δ(h), the δ handled by the closed forms)."""
    return Activation(
        name="relu",
        phi=lambda h: np.maximum(np.asarray(h, dtype=float), 0.0),
        dphi=lambda h: (np.asarray(h, dtype=float) > 0).astype(float),
        ddphi=lambda h: np.zeros_like(np.asarray(h, dtype=float)),
        family="relu",
    )


_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def smoothed_relu(width: float) -> Activation:
    """Gaussian-smoothed ReLU φ_s(h) = E_z[relu(h + s z)], z ~ N(0, 1), of width s > 0.

    φ_s(h) = s (z Φ(z) + ϕ(z)), φ_s′ = Φ(z), φ_s″ = ϕ(z)/s with z = h/s (Φ, ϕ: the standard normal
    distribution and density). It is smooth, so the finite-α DMFT can carry its φ″ sample by
    sample, and φ_s → relu as s → 0 with the DMFT curves converging to ReLU's (theory.md §10.9).
    Its Gaussian expectations are ReLU's closed forms at the covariance widened by s² on the
    diagonal. Named ``"smoothed_relu:<s>"`` (a string spec that :func:`get_activation` accepts).
    """
    s = float(width)
    if not (math.isfinite(s) and s > 0):
        raise InvalidParameterError(f"smoothed_relu width must lie in (0, inf), got {width!r}")

    def d1(h):
        return 0.5 * _erfc(-np.asarray(h, dtype=float) / (s * _SQRT2))

    def density(h):
        z = np.asarray(h, dtype=float) / s
        return _INV_SQRT_2PI * np.exp(-0.5 * z * z)

    return Activation(
        name=f"smoothed_relu:{s!r}",
        phi=lambda h: np.asarray(h, dtype=float) * d1(h) + s * density(h),
        dphi=d1,
        ddphi=lambda h: density(h) / s,
        family="relu",
        smoothing=s,
    )


def tanh() -> Activation:
    """φ(h) = tanh(h): analytic in the strip |Im h| < π/2 (poles at ±iπ/2), so its expectations
    use the trapezoid rule of :func:`trapezoid_rule`, exact to rounding at any variance."""

    def d1(h):
        return 1.0 / np.cosh(np.asarray(h, dtype=float)) ** 2

    return Activation(
        name="tanh",
        phi=lambda h: np.tanh(np.asarray(h, dtype=float)),
        dphi=d1,
        ddphi=lambda h: -2.0 * np.tanh(np.asarray(h, dtype=float)) * d1(h),
        family="quadrature",
        strip=math.pi / 2,
    )


def custom(phi, dphi, ddphi, name: str = "custom", strip: float | None = None) -> Activation:
    """A user-supplied activation with its first two derivatives.

    Its expectations use Gauss–Hermite, or, given ``strip`` (the half-width of a strip around the
    real axis where φ, φ′, φ″ are analytic and bounded), the trapezoid rule of
    :func:`trapezoid_rule`, which stays exact at large variances where Gauss–Hermite does not.
    """
    for label, f in (("phi", phi), ("dphi", dphi), ("ddphi", ddphi)):
        if not callable(f):
            raise ValueError(f"custom activation: {label} must be callable")
    return Activation(name=name, phi=phi, dphi=dphi, ddphi=ddphi, family="quadrature", strip=strip)


ACTIVATION_NAMES = ("quadratic", "square", "linear", "erf", "relu", "tanh")


def get_activation(spec, *, epsilon: float = 0.0) -> Activation:
    """An :class:`Activation` from a name or an instance (``quadratic`` takes ``epsilon``)."""
    if isinstance(spec, Activation):
        return spec
    table = {
        "quadratic": lambda: quadratic(epsilon),
        "square": square,
        "linear": linear,
        "erf": erf,
        "relu": relu,
        "tanh": tanh,
    }
    if isinstance(spec, str) and spec.startswith("smoothed_relu:"):
        try:
            width = float(spec.partition(":")[2])
        except ValueError:
            raise InvalidParameterError(f"activation smoothed_relu:<width> needs a number > 0 as its width, "
                                        f"got {spec!r}") from None
        return smoothed_relu(width)
    if not isinstance(spec, str) or spec not in table:
        raise InvalidParameterError(
            f"activation must be one of {', '.join(ACTIVATION_NAMES)}, smoothed_relu:<width> or an Activation, "
            f"got {spec!r}"
        )
    return table[spec]()


# --- Gauss–Hermite rules -------------------------------------------------------------------------


def gauss_hermite(n: int):
    """Nodes and weights of the n-point rule for E[f(z)], z ~ N(0, 1) (weights sum to 1)."""
    x, w = hermite_e.hermegauss(int(n))
    return x, w / math.sqrt(2.0 * math.pi)


def tensor_rule(nodes, weights):
    """Nodes (P, K) and weights (P,) of the tensor product of K one-dimensional rules, given as
    lists of their nodes and weights (first axis slowest)."""
    K = len(nodes)
    z = np.stack(np.meshgrid(*nodes, indexing="ij"), axis=-1).reshape(-1, K)
    weight = np.prod(np.stack(np.meshgrid(*weights, indexing="ij"), axis=-1).reshape(-1, K), axis=-1)
    return z, weight


def gauss_hermite_tensor(n: int, K: int):
    """Nodes (n^K, K) and weights of the tensor Gauss–Hermite rule for E[f(z)], z ~ N(0, I_K)."""
    x, w = gauss_hermite(n)
    return tensor_rule([x] * K, [w] * K)


#: The trapezoid rule takes this many steps across the analytic strip (:func:`trapezoid_rule`).
TRAPEZOID_STEPS_PER_STRIP = 8
#: Largest step (in standard deviations) of the trapezoid rule, and its extent |z| ≤ 10.
_TRAPEZOID_MAX_STEP = 0.5
_TRAPEZOID_EXTENT = 10.0
#: Strip half-width counted for erf(h/√2), entire: |erf((x + iy)/√2)| ≤ 2.04 for |y| ≤ π/2.
_ERF_STRIP = math.pi / 2


def trapezoid_rule(scale: float, strip: float):
    """Nodes and weights of the trapezoid rule for E[f(z)], z ~ N(0, 1), where f(z) = g(scale·z)
    and g is analytic and bounded in the strip |Im h| < ``strip``.

    The step is h = min(0.5, strip / (8·scale)) and the nodes cover |z| ≤ 10. The error of the
    trapezoid rule for an integrand analytic and bounded in a strip |Im z| < a (here a =
    strip/scale) falls as e^{−2πa/h}, which this step makes e^{−16π} ≈ 10⁻²² (the poles of tanh on
    the strip's edge raise it somewhat: measured at rounding, 3e-15, in the tests); the Gaussian,
    entire, is resolved to e^{−2π²/h²} ≤ e^{−79}, and the tail beyond |z| = 10 weighs e^{−50}.
    Unlike Gauss–Hermite at a fixed node count, whose error grows with the scale (tanh at
    variance 10: E tanh′ off by 7e-4 with 128 nodes), it stays at rounding for every scale: its node count grows
    as 160·scale/strip instead (theory.md §10.4, "The trapezoid rule for tanh").
    """
    scale = float(scale)
    step = _TRAPEZOID_MAX_STEP
    if scale > 0 and math.isfinite(strip):
        step = min(step, strip / (TRAPEZOID_STEPS_PER_STRIP * scale))
    half = int(math.ceil(_TRAPEZOID_EXTENT / step))
    x = step * np.arange(-half, half + 1)
    return x, step * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def analytic_strip(*acts: Activation) -> float | None:
    """The narrowest analytic strip of ``acts`` (polynomials: ∞, erf: π/2), or None if one of them
    has none known (user functions without ``strip``, the ReLU family): then Gauss–Hermite."""
    widths = []
    for a in acts:
        if a.family == "polynomial":
            widths.append(math.inf)
        elif a.family == "erf":
            widths.append(_ERF_STRIP)
        elif a.family == "quadrature" and a.strip is not None:
            widths.append(a.strip)
        else:
            return None
    return min(widths)


#: The joint trapezoid rule (:func:`joint_trapezoid_rule`): steps across the analytic strip along
#: each principal axis, the largest step and the radius of the pruned grid (standard deviations).
#: Chosen by measurement (theory.md §10.5): ≤ 3e-7 of the largest entry for bounded activations at
#: field variances 0.05–40, 1.8e-6 with a quadratic teacher.
JOINT_STEPS_PER_STRIP = 4.0
JOINT_MAX_STEP = 0.7
JOINT_RADIUS = 6.5
#: An axis k is flat (one node) when every |F_ak|, over fields and batch, is at most this fraction
#: of the largest entry of F: replacing E over z_k by z_k = 0 errs by ½ Σ F_ak² ∂²g, ≲ 10⁻¹² of the
#: integrand's scale. It catches the zero eigenvalues of coinciding fields (rounding leaves F_ak
#: ~ 10⁻⁸ of the largest entry), which would otherwise take a full axis of nodes. (Relative to F
#: itself, not to the strips: a polynomial field has an infinite strip but must keep its axis.)
_FLAT_AXIS = 1e-6


def joint_trapezoid_rule(F, strips):
    """Nodes z (P, K) and weights (P,) of a pruned tensor trapezoid rule for E[g(F z)], z ~ N(0, I_K).

    ``F`` (..., K, K) are factors of the fields' covariances (λ = F z, columns along the principal
    axes, :func:`eigen_factor`); ``strips`` (K,) the analytic strip of the function of each field.
    Along axis k the integrand stays analytic while |Im z_k| < a_k = min_a strip_a/|F_ak|, so the
    step is h_k = min(a_k/4, 0.7) (largest over a batch of F): the strip's aliasing error falls as
    e^{−2π·4} and the Gaussian's (with polynomial factors) is ~1e-8 at h = 0.7; nodes with
    |z| > 6.5 are dropped (the χ²_K tail there weighs ≤ 1e-8). Unlike Gauss–Hermite at a fixed node
    count, whose error grows with the variance (tanh, four fields: 6e-3 at field variance 3 with
    20⁴ nodes), this stays at ≤ 3e-7 (measured at variances up to 40), with node counts that grow
    only with the scale along each axis;
    pruning to the ball keeps π²/32 of a 4-d grid (theory.md §10.5, "The joint rule"). An axis along
    which no field moves (|F_ak| ≤ 10⁻⁶ max|F| for every field a and batch member: coinciding
    fields) gets the single node z_k = 0.
    """
    F = np.asarray(F, dtype=float)
    K = F.shape[-1]
    strips = np.asarray(strips, dtype=float)
    reach = np.abs(F) / strips[:, None]                        # (..., K fields, K axes)
    reach = np.max(reach.reshape(-1, K, K), axis=(0, 1))       # 1/a_k, largest over the batch
    size = np.max(np.abs(F).reshape(-1, K, K), axis=(0, 1))    # largest |F_ak| per axis k
    axes, weights = [], []
    for k in range(K):
        if size[k] <= _FLAT_AXIS * size.max():
            # the integrand does not vary along this axis (coinciding fields: a zero eigenvalue
            # of every covariance in the batch); the node z_k = 0 alone is exact to O(F_ak²)
            axes.append(np.zeros(1))
            weights.append(np.ones(1))
            continue
        step = JOINT_MAX_STEP
        if reach[k] > 0:
            step = min(step, 1.0 / (JOINT_STEPS_PER_STRIP * reach[k]))
        half = int(JOINT_RADIUS / step)
        x = step * np.arange(-half, half + 1)
        axes.append(x)
        weights.append(step * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi))
    z, weight = tensor_rule(axes, weights)
    keep = np.einsum("pk,pk->p", z, z) <= JOINT_RADIUS**2
    return z[keep], weight[keep]


def eigen_factor(C) -> np.ndarray:
    """F (..., K, K) with F Fᵀ = C from the eigendecomposition (negative eigenvalues clipped)."""
    lam, V = np.linalg.eigh(C)
    return V * np.sqrt(np.maximum(lam, 0.0))[..., None, :]


def _rule(scale, nodes: int, strip: float | None):
    """Gauss–Hermite of ``nodes`` points (``strip`` None) or the trapezoid rule for the largest of
    the ``scale`` values (standard deviations of the arguments per unit z)."""
    if strip is None:
        return gauss_hermite(nodes)
    scale = np.asarray(scale, dtype=float)
    return trapezoid_rule(float(np.max(np.abs(scale))) if scale.size else 0.0, strip)


def _cholesky2(C):
    """Lower factor (L11, L21, L22) of the 2×2 covariances C (..., 2, 2), clipped for PSD."""
    c11, c12, c22 = C[..., 0, 0], C[..., 0, 1], C[..., 1, 1]
    l11 = np.sqrt(np.maximum(c11, 0.0))
    safe = np.where(l11 > 0, l11, 1.0)
    l21 = np.where(l11 > 0, c12 / safe, 0.0)
    l22 = np.sqrt(np.maximum(c22 - l21**2, 0.0))
    return l11, l21, l22


def _gh2(fa, fb, C, n, weight_factor=None, strip=None):
    """E[fa(u) fb(w) · (γ₁z₁ + γ₂z₂ or 1)] over (u, w) = L z by a tensor rule: Gauss–Hermite of n
    nodes per axis, or, given the analytic ``strip`` of fa and fb, the trapezoid rule."""
    l11, l21, l22 = _cholesky2(C)
    x, w = _rule(np.stack([l11, np.abs(l21), l22]), n, strip)
    z1 = x[:, None]
    z2 = x[None, :]
    u = l11[..., None, None] * z1
    v = l21[..., None, None] * z1 + l22[..., None, None] * z2
    vals = fa(u) * fb(v)
    if weight_factor is not None:
        g1, g2 = weight_factor
        vals = vals * (g1[..., None, None] * z1 + g2[..., None, None] * z2)
    return np.einsum("...ij,i,j->...", vals, w, w)


# --- polynomial moments --------------------------------------------------------------------------


def _bivariate_moments(C, max_a: int, max_b: int):
    """E[u^a w^b] for a ≤ max_a, b ≤ max_b (Isserlis recursion), shape (..., max_a+1, max_b+1)."""
    c11, c12, c22 = C[..., 0, 0], C[..., 0, 1], C[..., 1, 1]
    lead = c11.shape
    M = np.zeros(lead + (max_a + 1, max_b + 1))
    # b-only moments: E[w^b] = (b−1) C22 E[w^{b−2}].
    M[..., 0, 0] = 1.0
    for b in range(2, max_b + 1):
        M[..., 0, b] = (b - 1) * c22 * M[..., 0, b - 2]
    # Stein on one u: E[u^a w^b] = (a−1) C11 E[u^{a−2} w^b] + b C12 E[u^{a−1} w^{b−1}].
    for a in range(1, max_a + 1):
        for b in range(0, max_b + 1):
            val = np.zeros(lead)
            if a >= 2:
                val = val + (a - 1) * c11 * M[..., a - 2, b]
            if b >= 1:
                val = val + b * c12 * M[..., a - 1, b - 1]
            M[..., a, b] = val
    return M


def _poly_deriv(coeffs, order):
    p = np.polynomial.Polynomial(coeffs).deriv(order)
    return np.atleast_1d(p.coef)


def _poly_pair(ca, cb, C):
    """E[p(u) q(w)] for polynomials with coefficients ca, cb (exact)."""
    ca, cb = np.asarray(ca, float), np.asarray(cb, float)
    M = _bivariate_moments(C, len(ca) - 1, len(cb) - 1)
    return np.einsum("...ab,a,b->...", M, ca, cb)


# --- closed forms of pair expectations E[a^(p)(u) b^(q)(w)] -----------------------------------------


def _positive_half_moment(n: int) -> float:
    """E[z^n 1{z > 0}] = 2^{n/2 − 1} Γ((n + 1)/2)/√π for z ~ N(0, 1)."""
    return 2.0 ** (n / 2.0 - 1.0) * math.gamma((n + 1) / 2.0) / math.sqrt(math.pi)


def _relu_polynomial_pair(r: Activation, order: int, coefficients, C):
    """E[r^(order)(u) P(w)] for a ReLU-family r (order 0: relu, 1: Θ, 2: δ, smoothed by widening
    C₁₁ by s²) and a polynomial P, in closed form (theory.md §10.4).

    With σ² = C₁₁ + s², E[P(w) | u] is a polynomial in u (:func:`_conditional_polynomial`: w = βu + γξ,
    β = C₁₂/σ², γ² = C₂₂ − C₁₂²/σ², expanded binomially with E[ξ^m] = (m − 1)!!); then the half-line moments
    E[relu(u) u^j] = σ^{j+1} H_{j+1}, E[Θ(u) u^j] = σ^j H_j, E[δ(u) u^j] = δ_{j0}/(σ√(2π)),
    H_n = E[z^n 1{z > 0}].
    """
    widened = np.array(C, dtype=float, copy=True)
    widened[..., 0, 0] += r.smoothing**2
    sigma = np.sqrt(widened[..., 0, 0])
    conditional = _conditional_polynomial(coefficients, widened)        # E[P(w) | u], powers of u
    out = np.zeros(np.shape(sigma))
    for j in range(conditional.shape[-1]):
        if order == 0:
            half = sigma ** (j + 1) * _positive_half_moment(j + 1)
        elif order == 1:
            half = sigma**j * _positive_half_moment(j)
        else:
            half = (1.0 / (sigma * math.sqrt(2.0 * math.pi))) if j == 0 else 0.0
        out = out + conditional[..., j] * half
    return out


def parity(act: Activation) -> int:
    """+1 if φ(−h) = φ(h), −1 if φ(−h) = −φ(h), 0 otherwise (checked on a grid of h to 1e-12)."""
    h = np.linspace(0.1, 3.0, 7)
    for sign in (1, -1):
        if np.allclose(act.phi(-h), sign * act.phi(h), rtol=1e-12, atol=1e-12):
            return sign
    return 0


def _relu_odd_pair(order: int, partner: Activation, partner_order: int, C, nodes: int = GH_NODES_2D):
    """E[r^(order)(u) ψ^(partner_order)(w)] for a ReLU-family r and an odd ψ (erf, tanh, ...).

    By parity: relu(u) = u/2 + (even), Θ(u) = 1/2 + (odd), δ(u) is even, and the same holds after
    Gaussian smoothing (E[(u + sz)/2] = u/2); ψ and ψ″ are odd, ψ′ even. Under (u, w) → (−u, −w)
    the mixed-parity terms vanish, so

        E[relu(u) ψ(w)]  = (C₁₂/2C₂₂) E[w ψ(w)],    E[Θ(u) ψ′(w)] = E[ψ′(w)]/2,
        E[relu(u) ψ″(w)] = (C₁₂/2C₂₂) E[w ψ″(w)],   E[δ(u) ψ(w)]  = 0,

    1-d expectations of smooth functions (Gauss–Hermite, geometric convergence), whatever the kink.
    Returns None for other orders.
    """
    c12, c22 = C[..., 0, 1], C[..., 1, 1]
    if (order, partner_order) == (2, 0):
        return np.zeros(np.shape(c12))
    x, weight = _rule(np.sqrt(np.maximum(c22, 0.0)), nodes, analytic_strip(partner))
    fields = np.sqrt(np.maximum(c22, 0.0))[..., None] * x
    if (order, partner_order) == (1, 1):
        return 0.5 * (partner.dphi(fields) @ weight)
    if order == 0 and partner_order in (0, 2):
        values = (partner.phi if partner_order == 0 else partner.ddphi)(fields)
        slope = np.where(c22 > 0, c12 / np.where(c22 > 0, c22, 1.0), 0.0)
        return 0.5 * slope * ((fields * values) @ weight)
    return None


def _conditional_polynomial(coefficients, C):
    """Coefficients (lowest power first, shape (..., K)) of E[P(w) | u] as a polynomial in u for
    (u, w) ~ N(0, C): w | u ~ N(βu, s²), β = C₁₂/C₁₁, s² = C₂₂ − C₁₂²/C₁₁ (β = 0, s² = C₂₂ where
    C₁₁ = 0), and E[(βu + sξ)^k] = Σ_{j even} binom(k, j) β^(k−j) s^j (j − 1)!! u^(k−j)."""
    c11, c12, c22 = C[..., 0, 0], C[..., 0, 1], C[..., 1, 1]
    positive = c11 > 0
    beta = np.where(positive, c12 / np.where(positive, c11, 1.0), 0.0)
    spread = np.maximum(c22 - beta * c12, 0.0)                         # s²
    coefficients = np.atleast_1d(np.asarray(coefficients, dtype=float))
    out = np.zeros(np.shape(c11) + (coefficients.size,))
    for k, coefficient in enumerate(coefficients):
        if coefficient == 0.0:
            continue
        for j in range(0, k + 1, 2):
            double_factorial = math.prod(range(j - 1, 0, -2))            # (j − 1)!!, 1 for j = 0
            out[..., k - j] += coefficient * math.comb(k, j) * double_factorial * beta ** (k - j) * spread ** (j // 2)
    return out


def _erf_moments(order: int, var, count: int):
    """E[u^r φ^(order)(u)] for r < ``count``, u ~ N(0, var), φ(u) = erf(u/√2) (shape (..., count)).

    With G_r = E[u^r φ′(u)] = √(2/π) (r − 1)!! var^(r/2) / (1 + var)^((r+1)/2) (r even; 0 odd),
    E[u^r φ″(u)] = −G_{r+1} (φ″ = −uφ′), and E[u^r φ(u)] = var·((r − 1)E[u^(r−2) φ] + G_{r−1})
    (Stein's lemma; 0 for r even, φ being odd).
    """
    var = np.asarray(var, dtype=float)
    size = count + 1
    slope = np.zeros(var.shape + (size,))                             # G_r
    for r in range(0, size, 2):
        slope[..., r] = _ERF_SLOPE * math.prod(range(r - 1, 0, -2)) * var ** (r // 2) / (1.0 + var) ** ((r + 1) / 2)
    if order == 1:
        return slope[..., :count]
    if order == 2:
        return -slope[..., 1:size]
    value = np.zeros(var.shape + (count,))
    for r in range(1, count, 2):
        value[..., r] = var * ((r - 1) * value[..., r - 2] if r >= 3 else 0.0) + var * slope[..., r - 1]
    return value


def _erf_polynomial_pair(order: int, coefficients, C):
    """E[φ^(order)(u) P(w)], φ(u) = erf(u/√2), P a polynomial (lowest order first), (u, w) ~ N(0, C):
    the conditional mean of P(w) given u (:func:`_conditional_polynomial`) against the Gaussian
    moments of erf and its derivatives (:func:`_erf_moments`), in closed form."""
    conditional = _conditional_polynomial(coefficients, C)
    return np.sum(conditional * _erf_moments(order, C[..., 0, 0], conditional.shape[-1]), axis=-1)


def _pair_closed(a: Activation, p: int, b: Activation, q: int, C):
    """Closed form of E[a^(p)(u) b^(q)(w)] or None when there is none here.

    (p, q) ∈ {(0, 0), (1, 1), (2, 0)}: the kernels that I2, I2′ and (by Stein) I3 need. Pairs of
    one family, ReLU-family × polynomial pairs (:func:`_relu_polynomial_pair`), ReLU-family ×
    odd pairs (erf, tanh, odd user functions: a 1-d smooth rule, :func:`_relu_odd_pair`), and erf ×
    polynomial pairs (:func:`_erf_polynomial_pair`).
    """
    families = {a.family, b.family}
    if families == {"relu", "polynomial"}:
        if a.family == "relu":
            return _relu_polynomial_pair(a, p, _poly_deriv(b.coefficients, q), C)
        swapped = C[..., ::-1, ::-1]
        return _relu_polynomial_pair(b, q, _poly_deriv(a.coefficients, p), swapped)
    if "relu" in families and len(families) == 2:
        relu_first = a.family == "relu"
        partner = b if relu_first else a
        if parity(partner) == -1:
            if relu_first:
                return _relu_odd_pair(p, partner, q, C)
            return _relu_odd_pair(q, partner, p, C[..., ::-1, ::-1])
    if families == {"erf", "polynomial"}:
        # erf against a polynomial: closed form through the conditional mean of the polynomial
        if a.family == "erf":
            return _erf_polynomial_pair(p, _poly_deriv(b.coefficients, q), C)
        return _erf_polynomial_pair(q, _poly_deriv(a.coefficients, p), C[..., ::-1, ::-1])
    if a.family != b.family or a.family == "quadrature":
        return None
    c11, c12, c22 = C[..., 0, 0], C[..., 0, 1], C[..., 1, 1]
    if a.family == "polynomial":
        return _poly_pair(_poly_deriv(a.coefficients, p), _poly_deriv(b.coefficients, q), C)
    if a.family == "erf":
        lam = (1 + c11) * (1 + c22) - c12**2
        if (p, q) == (0, 0):
            return (2 / math.pi) * np.arcsin(np.clip(c12 / np.sqrt((1 + c11) * (1 + c22)), -1, 1))
        if (p, q) == (1, 1):
            return (2 / math.pi) / np.sqrt(lam)
        if (p, q) == (2, 0):
            return -(2 / math.pi) * c12 / ((1 + c11) * np.sqrt(lam))
    if a.family == "relu":
        # φ_s(u) = E[relu(u + s z)] with independent z per argument: widen the diagonal
        c11, c22 = c11 + a.smoothing**2, c22 + b.smoothing**2
        prod = np.sqrt(np.maximum(c11 * c22, 0.0))
        safe = np.where(prod > 0, prod, 1.0)
        cosine = np.clip(np.where(prod > 0, c12 / safe, 0.0), -1.0, 1.0)
        if (p, q) == (0, 0):
            theta = np.arccos(cosine)
            return prod / (2 * math.pi) * (np.sin(theta) + (math.pi - theta) * cosine)
        if (p, q) == (1, 1):
            return 0.25 + np.arcsin(cosine) / (2 * math.pi)
        if (p, q) == (2, 0):
            # E[δ(u) relu(w)] = p_u(0) E[relu(w) | u = 0] = √(C11 C22 − C12²)/(2π C11).
            return np.sqrt(np.maximum(c11 * c22 - c12**2, 0.0)) / (2 * math.pi * c11)
    return None


# --- public expectations ----------------------------------------------------------------------------


def _as_cov(C, k):
    C = np.asarray(C, dtype=float)
    if C.shape[-2:] != (k, k):
        raise ValueError(f"covariance must have shape (..., {k}, {k}), got {C.shape}")
    return C


def mean_value(a: Activation, var, *, nodes: int = GH_NODES_2D):
    """E[φ(u)], u ~ N(0, var)."""
    var = np.asarray(var, dtype=float)
    if a.family == "erf":
        return np.zeros_like(var)
    if a.family == "relu":
        return np.sqrt((var + a.smoothing**2) / (2 * math.pi))
    if a.family == "polynomial":
        c = np.asarray(a.coefficients)
        moments = [np.ones_like(var)]
        for k in range(1, len(c)):
            moments.append((k - 1) * var * moments[k - 2] if k >= 2 else np.zeros_like(var))
        return sum(ck * mk for ck, mk in zip(c, moments))
    x, w = _rule(np.sqrt(np.maximum(var, 0.0)), nodes, analytic_strip(a))
    return a.phi(np.sqrt(var)[..., None] * x) @ w


def mean_slope(a: Activation, var, *, nodes: int = GH_NODES_2D):
    """E[φ′(u)], u ~ N(0, var): the coefficient of the linear (first Hermite) component."""
    var = np.asarray(var, dtype=float)
    if a.family == "erf":
        return _ERF_SLOPE / np.sqrt(1 + var)
    if a.family == "relu":
        return np.full_like(var, 0.5)
    if a.family == "polynomial":
        return mean_value(polynomial(_poly_deriv(a.coefficients, 1)), var)
    x, w = _rule(np.sqrt(np.maximum(var, 0.0)), nodes, analytic_strip(a))
    return a.dphi(np.sqrt(var)[..., None] * x) @ w


def pair_expectation(a: Activation, p: int, b: Activation, q: int, C, *, nodes: int = GH_NODES_2D):
    """E[a^(p)(u) b^(q)(w)], (u, w) ~ N(0, C) (..., 2, 2): the closed form where there is one
    (:func:`_pair_closed`), else the tensor rule over the Cholesky factor (trapezoid where both
    functions have a known analytic strip, :func:`analytic_strip`; else Gauss–Hermite, ``nodes``)."""
    closed = _pair_closed(a, p, b, q, C)
    if closed is not None:
        return closed
    derivative = ("phi", "dphi", "ddphi")
    return _gh2(getattr(a, derivative[p]), getattr(b, derivative[q]), C, nodes, strip=analytic_strip(a, b))


def i2(a: Activation, b: Activation, C, *, nodes: int = GH_NODES_2D):
    """I2(C) = E[φ_a(u) φ_b(w)], (u, w) ~ N(0, C), C of shape (..., 2, 2)."""
    return pair_expectation(a, 0, b, 0, _as_cov(C, 2), nodes=nodes)


def i2_prime(a: Activation, b: Activation, C, *, nodes: int = GH_NODES_2D):
    """I2′(C) = E[φ_a′(u) φ_b′(w)], (u, w) ~ N(0, C)."""
    return pair_expectation(a, 1, b, 1, _as_cov(C, 2), nodes=nodes)


def i3_shared(a: Activation, b: Activation, C_uw, c_uv, c_vw, *, nodes: int = GH_NODES_2D):
    """I3 for many v sharing one pair (u, w): E[φ_a′(u) v φ_b(w)] for each v.

    Parameters
    ----------
    C_uw : ndarray, shape (..., 2, 2)
        Covariance of (u, w).
    c_uv, c_vw : ndarray, shape (..., V)
        Cov(u, v) and Cov(v, w) of V variables v.

    Returns
    -------
    ndarray, shape (..., V)

    Every I3 is linear in (C_uv, C_vw) once (u, w) is fixed: by Stein's lemma on v,
    I3 = C_uv E[φ_a″(u) φ_b(w)] + C_vw E[φ_a′(u) φ_b′(w)] (closed families), or, regressing v on
    (u, w) = L z, I3 = γ₁ E[φ_a′(u) z₁ φ_b(w)] + γ₂ E[φ_a′(u) z₂ φ_b(w)] (quadrature, needs only φ′
    and φ). Either way two 2-d expectations per (u, w) serve all v.
    """
    C_uw = _as_cov(C_uw, 2)
    c_uv, c_vw = np.asarray(c_uv, dtype=float), np.asarray(c_vw, dtype=float)
    k20 = _pair_closed(a, 2, b, 0, C_uw)
    k11 = _pair_closed(a, 1, b, 1, C_uw)
    if k20 is not None and k11 is not None:
        return c_uv * k20[..., None] + c_vw * k11[..., None]
    l11, l21, l22 = _cholesky2(C_uw)
    x, w = _rule(np.stack([l11, np.abs(l21), l22]), nodes, analytic_strip(a, b))
    z1, z2 = x[:, None], x[None, :]
    vals = a.dphi(l11[..., None, None] * z1) * b.phi(l21[..., None, None] * z1 + l22[..., None, None] * z2)
    e1 = np.einsum("...ij,i,j->...", vals, w * x, w)
    e2 = np.einsum("...ij,i,j->...", vals, w, w * x)
    g1 = c_uv / l11[..., None]
    tiny = (l22 <= 1e-12 * np.maximum(l11, 1.0))[..., None]
    g2 = np.where(tiny, 0.0, (c_vw - l21[..., None] * g1) / np.where(tiny, 1.0, l22[..., None]))
    return g1 * e1[..., None] + g2 * e2[..., None]


def i3(a: Activation, b: Activation, C, *, nodes: int = GH_NODES_2D):
    """I3(C) = E[φ_a′(u) v φ_b(w)], (u, v, w) ~ N(0, C), C of shape (..., 3, 3).

    Closed families use Stein's lemma on v,
    I3 = C_uv E[φ_a″(u) φ_b(w)] + C_vw E[φ_a′(u) φ_b′(w)];
    the quadrature fallback regresses v on (u, w) = L z (needs only φ′ and φ); see
    :func:`i3_shared`.
    """
    C = _as_cov(C, 3)
    C_uw = C[..., [[0], [2]], [[0, 2]]]
    return i3_shared(a, b, C_uw, C[..., 0, 1][..., None], C[..., 1, 2][..., None], nodes=nodes)[..., 0]


def _erf_i4(C):
    """Saad–Solla closed form of E[g′(u) g′(v) g(w) g(z)], g = erf(·/√2)."""
    c = lambda i, j: C[..., i, j]  # noqa: E731
    lam4 = (1 + c(0, 0)) * (1 + c(1, 1)) - c(0, 1) ** 2
    lam0 = (
        lam4 * c(2, 3)
        - c(1, 2) * c(1, 3) * (1 + c(0, 0))
        - c(0, 2) * c(0, 3) * (1 + c(1, 1))
        + c(0, 1) * c(0, 2) * c(1, 3)
        + c(0, 1) * c(0, 3) * c(1, 2)
    )
    lam1 = lam4 * (1 + c(2, 2)) - c(1, 2) ** 2 * (1 + c(0, 0)) - c(0, 2) ** 2 * (1 + c(1, 1)) + 2 * c(0, 1) * c(0, 2) * c(1, 2)
    lam2 = lam4 * (1 + c(3, 3)) - c(1, 3) ** 2 * (1 + c(0, 0)) - c(0, 3) ** 2 * (1 + c(1, 1)) + 2 * c(0, 1) * c(0, 3) * c(1, 3)
    return (4 / math.pi**2) / np.sqrt(lam4) * np.arcsin(np.clip(lam0 / np.sqrt(lam1 * lam2), -1, 1))


#: Correlation beyond which two unsmoothed ReLU factors are taken to act on one field.
_COINCIDENT = 1.0 - 1e-12


def _orthant_expectation(C, widths, moments):
    """E[Π_{m ∈ moments} x_m · 1{x_p + s_p ξ_p > 0 for all p}] for x ~ N(0, C) (..., n, n), n ≤ 4.

    Each indicator p carries its own independent smoothing ξ_p ~ N(0, 1) of width s_p =
    ``widths[p]``, so the expectation is the unsmoothed one at C + diag(s²); ``moments`` holds
    0–2 indices. Variables with s_p = 0 on one field (correlation 1, as when i = k in the SGD
    sums) are merged into one, and two on opposite fields (correlation −1) make the indicator
    product vanish. The rest is an orthant probability or a truncated first or second moment
    over the distinct variables (:mod:`dmft.orthant`).
    """
    widths = np.asarray(widths, dtype=float)
    n = widths.size
    C = np.asarray(C, dtype=float) + np.diag(widths**2)
    lead = C.shape[:-2]
    flat = C.reshape(-1, n, n)
    sd = np.sqrt(np.einsum("sii->si", flat))
    corr = flat / (sd[:, :, None] * sd[:, None, :])
    exact = widths == 0.0
    both = exact[:, None] & exact[None, :]
    same = ((corr > _COINCIDENT) & both) | np.eye(n, dtype=bool)
    opposite = (corr < -_COINCIDENT) & both
    # representative of each variable: the first variable on the same field
    reps = np.argmax(same, axis=2)                           # (S, n)
    out = np.zeros(len(flat))
    alive = ~opposite.any(axis=(1, 2))
    keys = {tuple(r) for r in reps[alive]}
    for key in keys:
        rows = alive & np.all(reps == np.array(key), axis=1)
        variables = sorted(set(key))
        sub = flat[rows][:, variables][:, :, variables]
        where = [variables.index(key[m]) for m in moments]
        if len(where) == 0:
            out[rows] = orthant_probability(sub)
        elif len(where) == 1:
            out[rows] = truncated_first_moment(sub, where[0])
        else:
            out[rows] = truncated_second_moment(sub, where[0], where[1])
    return out.reshape(lead)


def _relu_student_i4(C, acts):
    """I4 of a ReLU-family student (Θ, Θ in the first two factors) against ReLU-family or erf
    factors (theory.md §10.5), in closed form.

    A ReLU factor is x·1{x > 0}. An erf factor is written with an independent ξ ~ N(0, 1) as
    erf(z/√2) = 2Φ(z) − 1 = E_ξ[2·1{z − ξ > 0}] − 1: an indicator of width 1 (coefficient 2) minus a
    constant. Expanding the erf factors gives at most four orthant expectations
    (:func:`_orthant_expectation`), each over ≤ 4 variables with ≤ 2 moment factors.
    """
    total = 0.0
    options = [((True, 2.0), (False, -1.0)) if act.family == "erf" else ((True, 1.0),) for act in acts[2:]]
    for (keep_c, coef_c), (keep_d, coef_d) in itertools.product(*options):
        keep = [0, 1] + [p for p, kept in ((2, keep_c), (3, keep_d)) if kept]
        widths = [acts[p].smoothing if acts[p].family == "relu" else 1.0 for p in keep]
        moments = [keep.index(p) for p in keep if p >= 2 and acts[p].family == "relu"]
        sub = C[..., keep, :][..., :, keep]
        total = total + coef_c * coef_d * _orthant_expectation(sub, widths, moments)
    return total


def _erf_student_i4(c: Activation, d: Activation, C):
    """I4 of an erf student, E[g′(u) g′(v) φ_c(w) φ_d(z)] with g′(h) = √(2/π) e^{−h²/2}, any φ_c, φ_d.

    The two Gaussian factors tilt the law of (u, v, w, z): with A = I + C_{(uv)(uv)},
    E[e^{−(u² + v²)/2} f(w, z)] = det(A)^{−1/2} E_{C̃}[f(w, z)],
    C̃ = C_{(wz)(wz)} − C_{(wz)(uv)} A⁻¹ C_{(uv)(wz)}  (theory.md §10.5),
    so I4 = (2/π) det(A)^{−1/2} I2(φ_c, φ_d; C̃), a pair expectation (closed where one exists).
    Valid for singular C (u = v, or w = z): only A is inverted.
    """
    a = C[..., :2, :2] + np.eye(2)
    cross = C[..., 2:, :2]                                      # C_{(wz)(uv)}
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    inv = np.stack([np.stack([a[..., 1, 1], -a[..., 0, 1]], -1), np.stack([-a[..., 1, 0], a[..., 0, 0]], -1)], -2)
    inv = inv / det[..., None, None]
    tilted = C[..., 2:, 2:] - cross @ inv @ np.swapaxes(cross, -1, -2)
    return (2.0 / math.pi) / np.sqrt(det) * i2(c, d, tilted)


def closed_form_i4(student: Activation, teacher: Activation) -> bool:
    """Whether :func:`i4` has a closed form (or an exact reduction) for every factor combination
    of this student and teacher: four erf; an erf student with any teacher (Gaussian tilt, then
    a pair expectation); a ReLU-family student with a ReLU-family or erf teacher (orthant moments)."""
    if student.family == "erf":
        return True
    return student.family == "relu" and teacher.family in ("relu", "erf")


def i4(a: Activation, b: Activation, c: Activation, d: Activation, C, *, nodes: int | None = None):
    """I4(C) = E[φ_a′(u) φ_b′(v) φ_c(w) φ_d(z)], (u, v, w, z) ~ N(0, C), C of shape (..., 4, 4).

    Closed forms (theory.md §10.5) for four ``erf`` (Saad–Solla); for an erf student (a = b =
    erf) and any φ_c, φ_d, by the Gaussian tilt of :func:`_erf_student_i4` (a pair expectation,
    closed where one exists); for a ReLU-family student with ReLU-family or erf φ_c, φ_d (Gaussian
    orthant moments, :func:`_relu_student_i4`). Otherwise a tensor rule over the eigen-factor of
    C: Gauss–Hermite for polynomials (the node count raised to cover the total degree) and for
    activations without a known analytic strip (``nodes``, default :data:`GH_NODES_4D`), else the
    pruned trapezoid rule of :func:`joint_trapezoid_rule` (its steps those of the largest factor
    over the batch), which unlike Gauss–Hermite keeps its accuracy as the variance grows.
    """
    C = _as_cov(C, 4)
    acts = (a, b, c, d)
    if all(x.family == "erf" for x in acts):
        return _erf_i4(C)
    if a.family == "erf" and b.family == "erf":
        return _erf_student_i4(c, d, C)
    if a.family == "relu" and b.family == "relu" and all(x.family in ("relu", "erf") for x in (c, d)):
        return _relu_student_i4(C, acts)
    F = eigen_factor(C)
    strip = analytic_strip(*acts)
    if nodes is None and strip is not None and not all(x.family == "polynomial" for x in acts):
        grid, wt = joint_trapezoid_rule(F, [analytic_strip(x) for x in acts])
    else:
        if nodes is None:
            nodes = GH_NODES_4D
            if all(x.family == "polynomial" for x in acts):
                nodes = (sum(x.degree for x in acts) + 2) // 2 + 1
        grid, wt = gauss_hermite_tensor(nodes, 4)
    out = np.zeros(F.shape[:-2])
    chunk = max(1, _I4_CHUNK_VALUES // max(1, out.size))     # bounds the memory of a large batch
    for start in range(0, len(wt), chunk):
        fields = np.einsum("...ij,pj->...pi", F, grid[start:start + chunk])
        vals = a.dphi(fields[..., 0]) * b.dphi(fields[..., 1]) * c.phi(fields[..., 2]) * d.phi(fields[..., 3])
        out += vals @ wt[start:start + chunk]
    return out
