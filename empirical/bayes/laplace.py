"""§A.9 of "Grokking Beyond Neural Networks" with Decision D.7: the Laplace approximation.

GP classification with the logistic likelihood (Rasmussen & Williams Alg. 3.1): Newton's method
for the mode, the approximate log marginal likelihood and its complexity ½ log|B|, trained with
Adam on the LML / N from the initialisations A/B/C, with landscapes and trajectories. The RBF
kernel and the landscape type are those of :mod:`empirical.bayes.gp`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive
from empirical.bayes.datasets import Dataset
from empirical.bayes.divergence import breakdown_diverges, stop_if_diverged
from empirical.bayes.gp import BREAKDOWN_ERRORS, DTYPE, Landscape, rbf_kernel
from empirical.metrics import GrokkingGap, grokking_gap

__all__ = [
    "LaplaceConfig",
    "LaplaceRun",
    "LAPLACE_INITIALISATIONS",
    "laplace_mode",
    "laplace_terms",
    "laplace_predict",
    "logistic_predictive_probability",
    "train_laplace_gp",
    "laplace_landscape",
    "laplace_arrays",
]


#: (log ℓ, log θ) initialisations of Decision D.7, mirroring A/B/C.
LAPLACE_INITIALISATIONS: dict[str, tuple[float, float]] = {"A": (-6.0, -4.0), "B": (-6.0, 4.0), "C": (0.0, 2.0)}


@dataclass(frozen=True)
class LaplaceConfig:
    """Settings of Decision D.7: Adam lr 0.04 on the Laplace LML / N, 3000 iterations.

    Attributes
    ----------
    newton_tol : float
        Stop Newton when the objective Ψ changes by less than this (R&W Alg. 3.1).
    newton_max_iter : int
    """

    learning_rate: float = 0.04
    iterations: int = 3000
    newton_tol: float = 1e-10
    newton_max_iter: int = 100
    threshold: float = 0.95

    def __post_init__(self) -> None:
        check_positive("learning_rate", self.learning_rate)
        check_int_at_least("iterations", self.iterations, 1)
        check_positive("newton_tol", self.newton_tol)
        check_int_at_least("newton_max_iter", self.newton_max_iter, 1)
        if not 0 < self.threshold < 1:
            raise InvalidParameterError(f"threshold must lie in (0, 1), got {self.threshold!r}")


def _logistic_derivatives(y_pm: torch.Tensor, f: torch.Tensor):
    """log σ(yf), its gradient and W = −∂² (R&W eqs 3.15)."""
    pi = torch.sigmoid(f)
    log_lik = torch.nn.functional.logsigmoid(y_pm * f)
    grad = (y_pm + 1) / 2 - pi
    w = pi * (1 - pi)
    return log_lik, grad, w


def _newton_step(k: torch.Tensor, y_pm: torch.Tensor, f: torch.Tensor):
    """One Newton step of R&W Alg. 3.1: returns (f_new, a = K⁻¹f_new)."""
    _, grad, w = _logistic_derivatives(y_pm, f)
    sw = torch.sqrt(w)
    n = f.shape[0]
    b_mat = torch.eye(n, dtype=DTYPE) + sw[:, None] * k * sw[None, :]
    chol_b = torch.linalg.cholesky(b_mat)
    b = w * f + grad
    c = torch.cholesky_solve((sw * (k @ b))[:, None], chol_b)[:, 0]
    a = b - sw * c
    return k @ a, a


def laplace_mode(k: torch.Tensor, y_pm: torch.Tensor, tol: float = 1e-10, max_iter: int = 100) -> tuple[torch.Tensor, int]:
    """Posterior mode f̂ of the logistic GP classifier by Newton's method (R&W Alg. 3.1), no grad.

    Stops when the Newton step satisfies max|Δf| < tol·(1 + max|f|) (quadratic convergence makes
    the last step's error far below tol).
    """
    with torch.no_grad():
        f = torch.zeros_like(y_pm)
        for it in range(1, max_iter + 1):
            f_new, _ = _newton_step(k, y_pm, f)
            step = float((f_new - f).abs().max())
            f = f_new
            if step < tol * (1.0 + float(f.abs().max())):
                return f, it
    return f, max_iter


def laplace_terms(x: torch.Tensor, y_pm: torch.Tensor, log_lengthscale: torch.Tensor, log_outputscale: torch.Tensor,
                  tol: float = 1e-10, max_iter: int = 100) -> dict[str, torch.Tensor]:
    """Laplace LML of §A.9 and its parts, each divided by N, differentiable in the hyperparameters.

    ``log q(y|X) = −½ f̂ᵀK⁻¹f̂ + log p(y|f̂) − ½ log|B|``, ``B = I + W^½ K W^½``. The mode is found
    without gradient, then one Newton step *with* gradient: at the fixed point the Newton map has
    zero Jacobian in f, so the step carries exactly df̂/dθ (implicit function theorem) and autograd
    gives the total derivative, including the dependence of W on f̂.

    Returns
    -------
    dict with ``lml``, ``data_fit`` (log p(y|f̂)/N), ``complexity`` (½ log|B| / N),
    ``prior_fit`` (−½ f̂ᵀK⁻¹f̂ / N), ``mode`` (f̂), ``newton_iterations``.
    """
    n = y_pm.shape[0]
    k = rbf_kernel(x, x, torch.exp(log_lengthscale).reshape(1), torch.exp(log_outputscale))
    f_hat, iters = laplace_mode(k.detach(), y_pm, tol, max_iter)
    f, a = _newton_step(k, y_pm, f_hat)
    log_lik, _, w = _logistic_derivatives(y_pm, f)
    sw = torch.sqrt(w)
    chol_b = torch.linalg.cholesky(torch.eye(n, dtype=DTYPE) + sw[:, None] * k * sw[None, :])
    half_logdet_b = torch.log(torch.diagonal(chol_b)).sum()
    prior_fit = -0.5 * a @ f
    data_fit = log_lik.sum()
    return {"lml": (prior_fit + data_fit - half_logdet_b) / n, "data_fit": data_fit / n,
            "complexity": half_logdet_b / n, "prior_fit": prior_fit / n, "mode": f, "newton_iterations": iters}


def laplace_predict(x_train: torch.Tensor, y_pm: torch.Tensor, x_new: torch.Tensor, log_ls, log_os,
                    tol: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictive latent mean and variance at ``x_new`` (R&W Alg. 3.2).

    ``f̄* = k*ᵀ ∇log p(y|f̂)``, ``V[f*] = k** − vᵀv`` with ``v = L⁻¹ W^½ k*`` (L = chol B).
    """
    with torch.no_grad():
        ls, th = torch.exp(torch.as_tensor(log_ls, dtype=DTYPE)).reshape(1), torch.exp(torch.as_tensor(log_os, dtype=DTYPE))
        k = rbf_kernel(x_train, x_train, ls, th)
        f_hat, _ = laplace_mode(k, y_pm, tol)
        _, grad, w = _logistic_derivatives(y_pm, f_hat)
        sw = torch.sqrt(w)
        chol_b = torch.linalg.cholesky(torch.eye(len(y_pm), dtype=DTYPE) + sw[:, None] * k * sw[None, :])
        k_star = rbf_kernel(x_train, x_new, ls, th)
        v = torch.linalg.solve_triangular(chol_b, sw[:, None] * k_star, upper=False)
        return k_star.T @ grad, (th - (v * v).sum(0)).clamp_min(0.0)


def logistic_predictive_probability(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """p(y = 1) ≈ σ(f̄ / √(1 + π V/8)) (MacKay's probit approximation, R&W eq 3.25 context)."""
    return torch.sigmoid(mean / torch.sqrt(1.0 + math.pi * var / 8.0))


@dataclass(frozen=True)
class LaplaceRun:
    """One initialisation of the Laplace experiment (D.7).

    Attributes
    ----------
    log_lengthscale, log_outputscale : ndarray, shape (I + 1,)
    lml, data_fit, complexity, prior_fit : ndarray, shape (I,)
        Laplace terms / N before each step.
    train_accuracy, val_accuracy : ndarray, shape (I,)
        After each step (class 1 iff p(y = 1) ≥ 0.5, the convention of §A.4).
    train_log_loss, val_log_loss : ndarray, shape (I,)
        Mean negative log predictive probability of the true labels after each step.
    gap : GrokkingGap
    """

    case: str
    log_lengthscale: np.ndarray
    log_outputscale: np.ndarray
    lml: np.ndarray
    data_fit: np.ndarray
    complexity: np.ndarray
    prior_fit: np.ndarray
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    train_log_loss: np.ndarray
    val_log_loss: np.ndarray
    gap: GrokkingGap
    seconds: float = 0.0
    config: LaplaceConfig = field(default_factory=LaplaceConfig)


def train_laplace_gp(data: Dataset, case: str | tuple[float, float] = "B", config: LaplaceConfig | None = None,
                     progress: bool = False) -> LaplaceRun:
    """Adam on −(Laplace LML)/N over (log ℓ, log θ) from a D.7 initialisation (Dataset 8).

    Raises
    ------
    empirical.bayes.divergence.TrainingDiverged
        At the first iteration whose LML or hyperparameters are not finite, or whose matrix
        B = I + W^½ K W^½ can no longer be factorised (a learning rate too large).
    """
    from tqdm.auto import tqdm

    config = config or LaplaceConfig()
    start = time.perf_counter()
    if isinstance(case, str):
        if case not in LAPLACE_INITIALISATIONS:
            raise InvalidParameterError(f"case must be one of {sorted(LAPLACE_INITIALISATIONS)}, got {case!r}")
        name, (ls0, os0) = case, LAPLACE_INITIALISATIONS[case]
    else:
        name, (ls0, os0) = "custom", map(float, case)
    x = torch.tensor(data.x_train, dtype=DTYPE)
    xv = torch.tensor(data.x_val, dtype=DTYPE)
    y_pm = torch.tensor(2.0 * np.asarray(data.y_train) - 1.0, dtype=DTYPE)
    yv = np.asarray(data.y_val) > 0.5
    yt = np.asarray(data.y_train) > 0.5
    log_ls = torch.nn.Parameter(torch.tensor(ls0, dtype=DTYPE))
    log_os = torch.nn.Parameter(torch.tensor(os0, dtype=DTYPE))
    optimiser = torch.optim.Adam([log_ls, log_os], lr=config.learning_rate)
    I = config.iterations
    traj = np.empty((I + 1, 2))
    traj[0] = [ls0, os0]
    lml, fit, comp, prior, tr_acc, va_acc, tr_ll, va_ll = (np.empty(I) for _ in range(8))
    labels = np.concatenate([yt, yv])
    n_tr = len(yt)
    label = f"Laplace GP case {name}"
    for it in tqdm(range(I), disable=not progress, desc=label):
        with breakdown_diverges(label, it + 1, I, BREAKDOWN_ERRORS):
            optimiser.zero_grad()
            terms = laplace_terms(x, y_pm, log_ls, log_os, config.newton_tol, config.newton_max_iter)
            (-terms["lml"]).backward()
            optimiser.step()
            lml[it], fit[it] = float(terms["lml"].detach()), float(terms["data_fit"].detach())
            comp[it], prior[it] = float(terms["complexity"].detach()), float(terms["prior_fit"].detach())
            stop_if_diverged(label, it + 1, I, "iteration", log_marginal_likelihood=lml[it],
                         hyperparameters=[log_ls, log_os])
            mean, var = laplace_predict(x, y_pm, torch.cat([x, xv]), log_ls.detach(), log_os.detach(),
                                        config.newton_tol)
        prob = logistic_predictive_probability(mean, var).numpy()
        correct = (prob >= 0.5) == labels
        nll = -np.log(np.clip(np.where(labels, prob, 1.0 - prob), 1e-300, None))
        tr_acc[it], va_acc[it] = float(correct[:n_tr].mean()), float(correct[n_tr:].mean())
        tr_ll[it], va_ll[it] = float(nll[:n_tr].mean()), float(nll[n_tr:].mean())
        traj[it + 1] = [float(log_ls.detach()), float(log_os.detach())]
    return LaplaceRun(case=name, log_lengthscale=traj[:, 0], log_outputscale=traj[:, 1], lml=lml, data_fit=fit,
                      complexity=comp, prior_fit=prior, train_accuracy=tr_acc, val_accuracy=va_acc,
                      train_log_loss=tr_ll, val_log_loss=va_ll, gap=grokking_gap(tr_acc, va_acc, config.threshold), seconds=time.perf_counter() - start,
                      config=config)


def laplace_landscape(data: Dataset, n_grid: int = 50, log_lengthscale_range=(-7.0, 4.0),
                      log_outputscale_range=(-5.0, 5.0)) -> Landscape:
    """Laplace LML, data fit log p(y|f̂) and complexity ½log|B| (each / N) on the D.7 grid."""
    check_int_at_least("n_grid", n_grid, 2)
    ls = np.linspace(*log_lengthscale_range, n_grid)
    os_ = np.linspace(*log_outputscale_range, n_grid)
    x = torch.tensor(data.x_train, dtype=DTYPE)
    y_pm = torch.tensor(2.0 * np.asarray(data.y_train) - 1.0, dtype=DTYPE)
    out = {key: np.empty((n_grid, n_grid)) for key in ("lml", "data_fit", "complexity")}
    with torch.no_grad():
        for i, o in enumerate(os_):
            for j, l in enumerate(ls):
                terms = laplace_terms(x, y_pm, torch.tensor(l, dtype=DTYPE), torch.tensor(o, dtype=DTYPE))
                for key in out:
                    out[key][i, j] = float(terms[key])
    return Landscape(ls, os_, out)


def laplace_arrays(runs: Sequence[LaplaceRun], landscape: Landscape | None = None) -> dict:
    out = {f"case{r.case}": dict(
        iteration=np.arange(len(r.lml)), log_lengthscale=r.log_lengthscale, log_outputscale=r.log_outputscale,
        lml=r.lml, data_fit=r.data_fit, complexity=r.complexity, prior_fit=r.prior_fit,
        train_accuracy=r.train_accuracy, val_accuracy=r.val_accuracy, train_log_loss=r.train_log_loss,
        val_log_loss=r.val_log_loss, gap=np.array([r.gap.t_train, r.gap.t_val, r.gap.gap]),
        gap_censored=np.array([r.gap.train_censored, r.gap.val_censored])) for r in runs}
    if landscape is not None:
        out["landscape"] = dict(log_lengthscale=landscape.log_lengthscale, log_outputscale=landscape.log_outputscale,
                                **landscape.terms)
    return out
