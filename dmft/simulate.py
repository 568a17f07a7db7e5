"""Finite-D full-batch gradient descent of the committee machine in NumPy (theory.md §0, §1).

An independent reference for the DMFT: the model, data and time convention of theory.md §0,
written directly from the definitions (no shared code with the solver beyond the exact
population loss of §2.4). The PyTorch trainer with all options lives in ``empirical``; this
module is deliberately small so that the tests can read it in one sitting.

    x_μ ~ N(0, I/D),  y_μ = (β·x_μ)²/2,  f = (κ/N) Σ_i φ(w_i·x),  φ(h) = h + (ε/2)h²
    L = (1/P) Σ_μ (f(x_μ) − y_μ)²,    W ← W − η ∇L,   η = η₀ N/κ²,   t = η₀·step/D

Initial weights are planted: w_i(0) = m_i β̂√ρ... precisely w_i(0) = m_i β/ρ + (1 − m_i²/ρ)^{1/2} z_i with
z_i Gaussian, orthogonalised against β and rescaled to |z_i|² = D, so that m(0) is exact and
C_w(0,0) = δ_ij + (1 − δ_ij) m_i m_j/ρ up to O(D^{-1/2}) fluctuations of z_i·z_j.
"""

from __future__ import annotations

import numpy as np

from .parameters import InvalidParameterError, ModelParameters, check_int_at_least, check_positive
from .committee_online import committee_loss_decomposition
from .population import centered_loss_decomposition, loss_decomposition
from .result import LearningCurves

__all__ = ["planted_weights", "simulate_gd", "planted_committee", "committee_gd_data", "simulate_committee_gd"]


def planted_weights(params: ModelParameters, dim: int, rng: np.random.Generator):
    """Teacher β (|β|² = ρD exactly) and planted initial weights W(0) (N × D)."""
    beta = rng.standard_normal(dim)
    beta *= np.sqrt(params.rho * dim) / np.linalg.norm(beta)
    unit = beta / np.linalg.norm(beta)
    W = np.empty((params.width, dim))
    for i, m in enumerate(params.m0):
        z = rng.standard_normal(dim)
        z -= (z @ unit) * unit
        z *= np.sqrt(dim) / np.linalg.norm(z)
        W[i] = m * beta / params.rho + np.sqrt(1.0 - m * m / params.rho) * z
    return beta, W


def _descend(W, record_steps, forward):
    """Gradient descent W ← W + increment(W), recorded at the (increasing) step numbers.

    ``forward(W)`` returns (train loss, increment); it is evaluated once per iterate. Returns the
    list of (W, train loss) at the recorded steps and the number of steps taken.
    """
    records = []
    step = 0
    loss, increment = forward(W)
    for target in record_steps:
        while step < target:
            W = W + increment
            step += 1
            loss, increment = forward(W)
        records.append((W, loss))
    return records, step


def simulate_gd(params: ModelParameters, dim: int, t: np.ndarray, *, seed: int = 0,
                time_step: float = 0.02, engine: str = "numpy", input_dtype: str = "float64") -> LearningCurves:
    """One run of full-batch gradient descent, recorded at the times ``t``.

    Parameters
    ----------
    params : ModelParameters
        Finite ``alpha``: P = round(alpha·dim) samples.
    dim : int
        Input dimension D.
    t : ndarray
        Recording times (theory units); each is rounded to the nearest step.
    seed : int
    time_step : float
        Theory time per step, η₀/D (gradient flow as it → 0).
    engine : {"numpy", "numba"}
        "numpy": the two matrix products written out below; "numba": the same step fused into
        one pass over the inputs (:mod:`dmft._gd_kernel`), 2.8× (float64 inputs) to 3.7×
        (float32) faster at P = 40000, D = 4000 on two cores
        (``benchmarks/bench_committee.py --only fused``); for large D.
    input_dtype : {"float64", "float32"}
        Storage of the inputs X with ``engine="numba"`` (the arithmetic is float64 either way).
        float32 rounds the drawn inputs to single precision, which changes the data set by a
        relative 6e-8 and halves the bytes each step streams.
    """
    dim = check_int_at_least("dim", dim, 2)
    time_step = check_positive("time_step", time_step)
    if engine not in ("numpy", "numba"):
        raise InvalidParameterError(f"engine must be 'numpy' or 'numba', got {engine!r}")
    if input_dtype not in ("float64", "float32"):
        raise InvalidParameterError(f"input_dtype must be 'float64' or 'float32', got {input_dtype!r}")
    if engine == "numpy" and input_dtype != "float64":
        raise InvalidParameterError("input_dtype='float32' needs engine='numba'")
    rng = np.random.default_rng(seed)
    N, eps, kappa = params.width, params.epsilon, params.scale
    P = int(round(params.alpha * dim))
    X = rng.standard_normal((P, dim)) / np.sqrt(dim)
    beta, W = planted_weights(params, dim, rng)
    if input_dtype == "float32":                 # the data set is the rounded inputs
        X = X.astype(np.float32).astype(np.float64)
    y = 0.5 * (X @ beta) ** 2
    W0 = W.copy()
    H0 = X @ W0.T
    f0 = kappa / N * np.sum(H0 + 0.5 * eps * H0**2, axis=1) if params.center else 0.0
    lr0 = time_step * dim
    lr = lr0 * N / kappa**2
    record_steps = np.rint(np.asarray(t, dtype=float) / time_step).astype(int)

    if engine == "numpy":
        def forward(W):
            H = X @ W.T
            residual = kappa / N * np.sum(H + 0.5 * eps * H**2, axis=1) - f0 - y
            grad = (2.0 / P) * (kappa / N) * ((residual[:, None] * (1.0 + eps * H)).T @ X)
            return np.mean(residual**2), -lr * grad
    else:
        from ._gd_kernel import loss_and_gradient

        inputs = X.astype(np.float32) if input_dtype == "float32" else X
        shifted = y + f0
        del X

        def forward(W):
            loss, grad = loss_and_gradient(inputs, W, shifted, kappa, eps)
            return loss, -lr * grad

    records, step = _descend(W, record_steps, forward)
    train = [loss for _, loss in records]
    overlap = [Wr @ beta / dim for Wr, _ in records]
    cov = [Wr @ Wr.T / dim for Wr, _ in records]
    cross = [Wr @ W0.T / dim for Wr, _ in records]
    overlap, cov, cross = np.array(overlap), np.array(cov), np.array(cross)
    m0, C0 = W0 @ beta / dim, W0 @ W0.T / dim
    if params.center:
        decomposition = centered_loss_decomposition(cov, cross, overlap, cov0=C0, overlap0=m0,
                                                    epsilon=eps, scale=kappa, rho=params.rho)
    else:
        decomposition = loss_decomposition(cov, overlap, epsilon=eps, scale=kappa, rho=params.rho)
    return LearningCurves(
        kind="simulation", t=record_steps * time_step, train_loss=np.array(train),
        test_loss=decomposition.sum(axis=-1), overlap=overlap, cov=cov, decomposition=decomposition,
        parameters=params.as_attrs(), settings={"dim": dim, "n_train": P, "seed": seed, "time_step": time_step,
                                                "engine": engine, "input_dtype": input_dtype},
        iterations=int(step), extras={"cross_cov": cross},
    )


def planted_committee(model, dim: int, rng: np.random.Generator):
    """Teacher B (M × D) and student W(0) (N × D) with exactly the model's T, R(0) and Q(0).

    B = √D L_T Uᵀ with U (D × M) orthonormal and L_T L_Tᵀ = T, so BBᵀ/D = T. W(0) = R₀T⁻¹B + √D S Vᵀ
    with V (D × N) orthonormal and orthogonal to U and S Sᵀ = Q₀ − R₀T⁻¹R₀ᵀ (the student's part
    outside the teachers' span), so W Bᵀ/D = R₀ and W Wᵀ/D = Q₀ (theory.md §10.1).
    """
    N, M = model.width, model.M
    if dim < N + M:
        raise InvalidParameterError(f"dim must be at least N + M = {N + M} (the student's and the teacher's units "
                                    f"need that many orthogonal directions), got {dim}")
    basis, _ = np.linalg.qr(rng.standard_normal((dim, N + M)))
    U, V = basis[:, :M], basis[:, M:]
    T = model.teacher_cov
    B = np.sqrt(dim) * np.linalg.cholesky(T) @ U.T
    slope = model.init_overlap @ np.linalg.inv(T)
    rest = model.init_cov - slope @ model.init_overlap.T
    lam, vec = np.linalg.eigh(0.5 * (rest + rest.T))
    S = vec * np.sqrt(np.clip(lam, 0.0, None))
    W = slope @ B + np.sqrt(dim) * S @ V.T
    return B, W


def committee_gd_data(model, alpha: float, dim: int, seed: int = 0):
    """Teacher B, planted W(0), inputs X (P × D, x ~ N(0, I/D)) and targets y of one run.

    One generator seeded by ``seed`` draws, in this order, the planting of :func:`planted_committee`,
    X and the output noise: the NumPy simulation here and the PyTorch trainer
    :func:`empirical.committee.family.train_committee_family` start from the same numbers.
    """
    alpha = check_positive("alpha", alpha)
    dim = check_int_at_least("dim", dim, 2)
    seed = check_int_at_least("seed", seed, 0)
    M = model.M
    P = int(round(alpha * dim))
    if P < 1:
        raise InvalidParameterError(f"alpha * dim must give at least one training sample (P = round(alpha*dim) >= 1), "
                                    f"got alpha = {alpha:g}, dim = {dim}")
    rng = np.random.default_rng(seed)
    B, W = planted_committee(model, dim, rng)
    X = rng.standard_normal((P, dim)) / np.sqrt(dim)
    y = model.teacher_scale / M * np.sum(model.teacher_activation.phi(X @ B.T), axis=1)
    y = y + np.sqrt(model.noise) * rng.standard_normal(P)
    return B, W, X, y


def simulate_committee_gd(model, alpha: float, dim: int, t: np.ndarray, *, seed: int = 0,
                          time_step: float = 0.02) -> LearningCurves:
    """Full-batch gradient descent of a soft committee on P = α·D samples (theory.md §10.1–10.2).

    Student f = (κ/N) Σ_i φ(w_i·x) (``model.center``: f(·; W) − f(·; W(0)), §10.10),
    target y = (κ*/M) Σ_n φ*(β_n·x) + σξ (or y = (β·x)²/2 for
    the square target), loss (1/P) Σ_μ (f − y)², step η = η₀N/κ², t = η₀·step/D: the finite-D
    system whose α → ∞, D → ∞ limit is the online ODE of :mod:`dmft.committee_online`.

    Parameters
    ----------
    model : CommitteeModel
        Activations, widths, scales, T, R(0), Q(0) (planted exactly) and noise.
    alpha : float
        P/D.
    dim : int
        D ≥ N + M.
    t : ndarray
        Recording times (theory units); each is rounded to the nearest step.
    seed : int
    time_step : float
        Theory time per step, η₀/D (gradient flow as it → 0).

    Returns
    -------
    LearningCurves
        ``kind="simulation"``; ``test_loss`` is the exact population loss of (Q, R, T)
        (:func:`dmft.committee_online.committee_loss`); ``overlap`` R_{i, i mod M} as in
        :func:`~dmft.committee_online.solve_committee_online`, the full R in
        ``extras["overlap_matrix"]``.
    """
    time_step = check_positive("time_step", time_step)
    N, M = model.width, model.M
    B, W, X, y = committee_gd_data(model, alpha, dim, seed)
    W0 = W.copy()
    P = X.shape[0]
    phi = model.activation
    kappa = model.scale
    lr0 = time_step * dim
    record_steps = np.rint(np.asarray(t, dtype=float) / time_step).astype(int)
    # centred predictor: f(·; W) − f(·; W(0)), i.e. the targets shifted by f(·; W(0))
    y_fit = y + kappa / N * np.sum(phi.phi(X @ W0.T), axis=1) if model.center else y

    def forward(W):
        H = X @ W.T
        residual = y_fit - kappa / N * np.sum(phi.phi(H), axis=1)
        # w_i += η (2/P)(κ/N) Σ_μ Δ_μ φ'(h_iμ) x_μ with η = η₀N/κ²
        return np.mean(residual**2), lr0 * (2.0 / (kappa * P)) * ((residual[:, None] * phi.dphi(H)).T @ X)

    records, step = _descend(W, record_steps, forward)
    train = [loss for _, loss in records]
    overlap = [Wr @ B.T / dim for Wr, _ in records]
    cov = [Wr @ Wr.T / dim for Wr, _ in records]
    R, Q = np.array(overlap), np.array(cov)
    cross = np.array([Wr @ W0.T / dim for Wr, _ in records]) if model.center else None
    decomposition = committee_loss_decomposition(Q, R, model, cross)
    extras = {"overlap_matrix": R} | ({"cross": cross} if model.center else {})
    return LearningCurves(
        kind="simulation", t=record_steps * time_step, train_loss=np.array(train),
        test_loss=decomposition.sum(axis=-1), overlap=R[:, np.arange(N), np.arange(N) % M], cov=Q,
        decomposition=decomposition, parameters=model.as_attrs(),
        settings={"dim": dim, "n_train": P, "seed": seed, "time_step": time_step, "alpha": alpha},
        iterations=int(step), extras=extras,
    )
