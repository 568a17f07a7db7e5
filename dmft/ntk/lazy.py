"""The NTK of the committee machine: lazy (linearised) learning curves.

Part of :mod:`dmft.ntk` (the names are re-exported there).
"""

from __future__ import annotations

import time as _time

import numpy as np

from dmft.ntk._checks import _as_float_array, _check_target_scale, _matrix, _vector
from dmft.ntk.gram import _null_threshold, committee_output, ntk_eigendecomposition, ntk_gram
from dmft.ntk.polynomial import linearised_polynomial, polynomial_loss_decomposition
from dmft.parameters import InvalidParameterError, check_finite, check_positive
from dmft.result import LearningCurves

__all__ = ["lazy_curves", "lazy_weights"]


def _time_array(t) -> np.ndarray:
    t = np.atleast_1d(_as_float_array("t", t))
    if t.ndim != 1 or t.size < 1:
        raise InvalidParameterError(f"t must be a non-empty 1-D array of times, got shape {t.shape}")
    if np.any(np.isnan(t)) or np.any(t < 0):
        raise InvalidParameterError("t must contain times in [0, inf] (theory units eta0*step/D)")
    if np.any(np.diff(t) < 0):
        raise InvalidParameterError("t must be non-decreasing")
    return t


def _lazy_solution(W0, X, y, *, epsilon, scale, times, center, lr, rcond) -> dict:
    """Gram-eigenbasis solution of the linearised dynamics (see :func:`lazy_curves`).

    Returns a dict with ``coef`` a(t) (T, P) such that ΔW(t) = J_trainᵀ a(t), ``residual``
    r(t) (T, P), ``values`` (Gram eigenvalues, descending), ``active`` (non-null modes),
    ``lr`` (validated) and ``steps`` (GD steps or None).
    """
    n, d = W0.shape
    P = X.shape[0]
    alpha = P / d
    steps = None
    if lr is not None:
        lr = check_positive("lr (eta0)", lr)
        if np.any(np.isinf(times)):
            raise InvalidParameterError("t must be finite when lr is given (discrete gradient descent)")
        steps = times * d / lr
        if np.any(np.abs(steps - np.round(steps)) > 1e-9 * np.maximum(1.0, steps)):
            raise InvalidParameterError("t must be whole numbers of steps (t*D/lr integer) when lr is given")
        steps = np.round(steps)

    K = ntk_gram(W0, X, epsilon=epsilon, scale=scale)
    values, vectors = ntk_eigendecomposition(K)
    active = values > _null_threshold(values, rcond)
    lam = np.where(active, values, 0.0)  # λ_k of K
    lam_hat = lam * n / scale**2  # λ̂_k of K̂ = (N/κ²)K

    f0 = np.zeros(P) if center else committee_output(W0, X, epsilon=epsilon, scale=scale)
    r0_modes = vectors.T @ (y - f0)

    # decay factors d_k(t) of every mode, shape (T, P); frozen (null) modes keep d = 1
    decay = np.ones((times.size, P))
    if lr is None:
        exponent = (2.0 / alpha) * np.outer(times, lam_hat[active])
        decay[:, active] = np.exp(-exponent)
    else:
        a = 2.0 * lr * lam_hat[active] / P
        if a.size and a.max() >= 2.0:
            # |1 − a_k| >= 1: the stiffest mode does not decay (a_k = 2) or grows without bound
            raise InvalidParameterError(
                f"lr (eta0) must be < P/max(lambda_hat) = {P / lam_hat[active].max():.4g} for the linearised gradient "
                f"descent to converge (its stiffest mode is multiplied by 1 - a = {1.0 - a.max():.4g} per step), "
                f"got {lr:g}")
        decay[:, active] = np.power(1.0 - a[None, :], steps[:, None])
    integrated = np.zeros_like(decay)  # (1 − d_k)/λ_k
    integrated[:, active] = (1.0 - decay[:, active]) / lam[active]
    return {
        "coef": (integrated * r0_modes) @ vectors.T,
        "residual": (decay * r0_modes) @ vectors.T,
        "values": values,
        "active": active,
        "lr": lr,
        "steps": steps,
    }


def lazy_weights(
    weights0: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    epsilon: float,
    scale: float,
    t,
    center: bool = True,
    lr: float | None = None,
    rcond: float | None = None,
) -> np.ndarray:
    """Weights W(t) = W₀ + J_trainᵀ a(t) of the linearised model (:func:`lazy_curves`).

    Same arguments and time convention as :func:`lazy_curves`. Returns shape ``(T, N, D)``
    (memory T·N·D; :func:`lazy_curves` only keeps the order parameters).
    """
    W0 = _matrix("weights0", weights0)
    n, d = W0.shape
    X = _matrix("x_train", x_train, columns=d)
    y = _vector("y_train", y_train, length=X.shape[0])
    epsilon = check_finite("epsilon", epsilon)
    scale = check_positive("scale (output scale kappa)", scale)
    times = _time_array(t)
    sol = _lazy_solution(W0, X, y, epsilon=epsilon, scale=scale, times=times, center=center, lr=lr, rcond=rcond)
    dphi = 1.0 + epsilon * (X @ W0.T)
    return W0[None] + (scale / n) * np.einsum("tp,pn,pd->tnd", sol["coef"], dphi, X, optimize=True)


def lazy_curves(
    weights0: np.ndarray,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    epsilon: float,
    scale: float,
    t,
    teacher: np.ndarray,
    center: bool = True,
    target_scale: float = 0.5,
    lr: float | None = None,
    rcond: float | None = None,
    progress: bool = False,
) -> LearningCurves:
    """Exact train/test curves of the linearised (lazy) committee machine under gradient descent.

    **Model.** f_lin(x; W) = [f(x; W₀)] + J(x)·(W − W₀), J(x) = ∂f(x)/∂W at W₀ (the bracket
    is dropped for ``center=True``). This is the κ → ∞ limit of the centred network
    (theory.md §1.4: φ' freezes) and the paper's ``nt.linearize`` baseline.

    **Time constant (derivation).** Gradient descent on L = (1/P)Σ_μ (f_lin(x_μ) − y_μ)² with
    η = η₀N/κ² (theory.md §1.4) moves W by ΔW = (2η/P) Σ_μ r_μ J(x_μ), r = y − f_lin(X), so the
    training residual obeys r ← (I − (2η/P)K) r with K the Gram matrix of :func:`ntk_gram`.
    Write K̂ = (N/κ²)K (κ-independent) with eigenpairs (λ̂_k, v_k). Per step mode k is
    multiplied by 1 − a_k, a_k = 2η₀λ̂_k/P; one step advances theory time by η₀/D, so in the
    limit η₀ → 0 at fixed t = η₀·step/D

        r_k(t) = exp(−(2/α) λ̂_k t) r_k(0),   α = P/D,

    i.e. c = 2/α in exp(−λ̂_k c t). For P → ∞, λ̂_k/P → (table of §3) and the rate is
    2D·λ/(κ²/N): 2 for linear functions, 2ε²(D+2)/D for |x|², 4ε²/D for traceless quadratics.
    The weights move by ΔW(t) = J_trainᵀ a(t), a(t) = Σ_k v_k (1 − e^{−(2/α)λ̂_k t})/λ_k
    (v_k·r(0)), λ_k = (κ²/N)λ̂_k, and test predictions change by K(x_test, X) a(t). At
    t = ∞, a = K⁺r(0): kernel regression (:func:`kernel_regression`). Modes with
    λ_k ≤ ``rcond``·λ_max (the null space of K, e.g. when P > N·D) are frozen exactly; for
    |ε| ≳ (P·machine-ε)^(−1/2) that includes linear modes lost to rounding (``dmft ntk`` refuses
    such ε; ``settings["null_modes"]`` counts the frozen modes).
    With ``lr = η₀`` the discrete factors (1 − a_k)^step replace the exponentials (exact
    gradient descent; the number of steps t·D/η₀ must be a whole number); the flow differs
    from it by at most a_max/(2e(1 − a_max)) of |r(0)| per mode.

    **Fields of the result.**

    * ``train_loss`` — (1/P)|r(t)|².
    * ``test_loss`` — the exact population MSE over x ~ N(0, I_D/D) against y = s(β·x)²:
      f_lin is the quadratic polynomial of :func:`linearised_polynomial`
      (:func:`polynomial_loss_decomposition`). The finite-test-set MSE is
      ``extras["test_loss_test_set"]``.
    * ``decomposition`` — (variance, alignment, linear) terms of that population loss; they
      are the §2.3 terms of the linearised predictor's effective w̄ = b/κ and M = 2A/(κε),
      not ``loss_decomposition_from_weights`` of W(t) (which would add ΔWᵀΔW/N to M and so
      describe the full network evaluated at the linearised weights, not the predictor).
    * ``overlap``, ``cov`` — m(t) = W(t)β/D and Q(t) = W(t)W(t)ᵀ/D of the linearised
      model's weights W(t) = W₀ + ΔW(t).
    * ``extras`` — ``test_loss_test_set`` (T,), ``cross_cov`` C_w(t,0) = W(t)W₀ᵀ/D (T,N,N),
      ``relative_weight_change`` |W(t) − W₀|_F/|W₀|_F (T,), ``gram_eigenvalues`` of K
      (descending, (P,)).

    Parameters
    ----------
    weights0 : ndarray, shape (N, D)
        W₀.
    x_train : ndarray, shape (P, D); y_train : ndarray, shape (P,)
    x_test : ndarray, shape (Q, D); y_test : ndarray, shape (Q,)
    epsilon, scale : float
        ε and κ (κ enters only through f(x; W₀) when uncentred and the size of ΔW ∝ 1/κ).
    t : array_like, shape (T,)
        Non-decreasing theory times in [0, inf]; ``inf`` gives the kernel-regression limit
        (gradient flow only).
    teacher : ndarray, shape (D,)
        β (for the overlaps and the population loss; the labels are taken as given).
    center : bool, default True
        Linearise the centred predictor f − f(·; W₀) (theory.md §1.4).
    target_scale : float, default 0.5
        s in y = s(β·x)² (the population loss's target).
    lr : float, optional
        η₀ for exact discrete gradient descent; None (default) for gradient flow.
    rcond : float, optional
        Relative threshold of the Gram null space (default 10·P·machine-ε).
    progress : bool, default False
        tqdm bar over the time points.

    Returns
    -------
    LearningCurves
        ``kind="lazy"``.
    """
    start = _time.perf_counter()
    W0 = _matrix("weights0", weights0)
    n, d = W0.shape
    X = _matrix("x_train", x_train, columns=d)
    P = X.shape[0]
    y = _vector("y_train", y_train, length=P)
    Xt = _matrix("x_test", x_test, columns=d)
    yt = _vector("y_test", y_test, length=Xt.shape[0])
    epsilon = check_finite("epsilon", epsilon)
    scale = check_positive("scale (output scale kappa)", scale)
    beta = _vector("teacher", teacher, length=d)
    s = _check_target_scale(target_scale)
    times = _time_array(t)
    alpha = P / d
    sol = _lazy_solution(W0, X, y, epsilon=epsilon, scale=scale, times=times, center=center, lr=lr, rcond=rcond)
    lr, active, values, coef = sol["lr"], sol["active"], sol["values"], sol["coef"]
    train_loss = np.mean(sol["residual"] ** 2, axis=1)
    Kt = ntk_gram(W0, Xt, epsilon=epsilon, scale=scale, inputs2=X)
    f0t = np.zeros(Xt.shape[0]) if center else committee_output(W0, Xt, epsilon=epsilon, scale=scale)
    test_pred = f0t[None, :] + coef @ Kt.T
    test_loss_set = np.mean((test_pred - yt[None, :]) ** 2, axis=1)

    dphi = 1.0 + epsilon * (X @ W0.T)  # (P, N)
    jac_scale = scale / n
    overlap = np.empty((times.size, n))
    cov = np.empty((times.size, n, n))
    cross = np.empty((times.size, n, n))
    decomposition = np.empty((times.size, 3))
    moved = np.empty(times.size)
    norm0 = float(np.linalg.norm(W0))
    iterator = range(times.size)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="lazy curves", unit="t")
    for j in iterator:
        delta_w = jac_scale * (dphi * coef[j][:, None]).T @ X  # J_trainᵀ a(t), (N, D)
        W = W0 + delta_w
        overlap[j] = W @ beta / d
        cov[j] = W @ W.T / d
        cross[j] = W @ W0.T / d
        moved[j] = np.linalg.norm(delta_w) / norm0 if norm0 > 0 else np.linalg.norm(delta_w)
        b, A = linearised_polynomial(W0, delta_w, epsilon=epsilon, scale=scale, center=center)
        decomposition[j] = polynomial_loss_decomposition(b, A, beta, target_scale=s)

    parameters = {
        "alpha": alpha,
        "epsilon": epsilon,
        "scale": scale,
        "width": n,
        "rho": float(beta @ beta) / d,
        "init_overlap": (W0 @ beta / d).tolist(),
        "init_cov": (W0 @ W0.T / d).tolist(),
        "center": bool(center),
    }
    settings = {
        "method": "linearised model, exact in the Gram eigenbasis",
        "dynamics": "gradient flow" if lr is None else "gradient descent",
        "lr": lr,
        "dim": d,
        "n_train": P,
        "n_test": int(Xt.shape[0]),
        "target_scale": s,
        "null_modes": int(np.count_nonzero(~active)),
        "rcond": rcond,
    }
    return LearningCurves(
        kind="lazy",
        t=times,
        train_loss=train_loss,
        test_loss=decomposition.sum(axis=1),
        overlap=overlap,
        cov=cov,
        decomposition=decomposition,
        parameters=parameters,
        settings=settings,
        converged=True,
        iterations=1 if lr is None else int(sol["steps"].max()),
        residual=0.0,
        seconds=_time.perf_counter() - start,
        message=(
            f"exact linearised {'gradient flow' if lr is None else 'gradient descent'}; "
            f"{int(np.count_nonzero(~active))} of {P} Gram modes in the null space (frozen)"
        ),
        extras={
            "test_loss_test_set": test_loss_set,
            "cross_cov": cross,
            "relative_weight_change": moved,
            "gram_eigenvalues": values,
        },
    )
