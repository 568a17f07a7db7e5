"""Gaussian-process systems of "Grokking Beyond Neural Networks", written directly in torch.

The systems (seed_systems.md):

* §A.4/§A.5 — variational GP classification (1-0 data, concealed parity): inducing points = the
  training inputs (fixed), a full-rank Cholesky variational distribution, the *unwhitened*
  strategy, constant mean, ARD RBF kernel with an output scale (eq 9), Bernoulli likelihood with
  the probit link. The objective is the ELBO divided by N,
  ``(1/N) Σ_n E_q[log Φ(ỹ_n f_n)] − KL(q(u) ‖ p(u)) / N`` (ỹ = ±1), whose first term is the data
  fit and second the complexity (App. F.2, eq 26). Adam, full batch.
* §A.7 — exact GP regression on the sine from initialisations A/B/C, trained on the log marginal
  likelihood (eq 6) divided by N, with the LML, data-fit and complexity landscapes.
* §A.9 with Decision D.7 — the Laplace approximation for GP classification lives in
  :mod:`empirical.bayes.laplace` (it uses this module's RBF kernel and :class:`Landscape`).

This module reimplements the maths of gpytorch's ``ApproximateGP`` + ``UnwhitenedVariationalStrategy``
+ ``BernoulliLikelihood`` and ``ExactGP`` + ``GaussianLikelihood`` (the authors' choice) in plain
torch float64, matching gpytorch's conventions where they matter:

* positive hyperparameters of the classification GP use softplus (gpytorch's ``Positive``), with
  raw value 0 by default (ℓ = θ = log 2); the regression GP of §A.7 uses exp/log as the spec says;
  the Gaussian noise uses softplus with a 1e-4 floor (gpytorch's ``GreaterThan(1e-4)``);
* the variational distribution starts at the prior, q(u) = N(μ + 10⁻³ ε, K + 10⁻³ I);
* the KL prior covariance carries gpytorch's ``add_jitter()`` default 10⁻³; predictions at new inputs
  use gpytorch's float32 variational jitter 10⁻⁴ (configurable);
* expected log-likelihoods by 20-point Gauss–Hermite quadrature; p(y = 1) = Φ(μ/√(1 + σ²)).

``tests/empirical/bayes/test_bayes_gp.py`` (``test_variational_terms_and_predictions_match_gpytorch``)
shows equal results against gpytorch when it is installed (optional extra ``gp``);
:func:`require_gpytorch` gives a clear message where it is needed and missing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from dmft.parameters import InvalidParameterError, check_int_at_least, check_positive

from empirical.bayes.datasets import Dataset, one_zero, parity
from empirical.bayes.divergence import breakdown_diverges, stop_if_diverged
from empirical.metrics import GrokkingGap, first_crossing, grokking_gap

__all__ = [
    "require_gpytorch",
    "rbf_kernel",
    "gaussian_kl",
    "probit_expected_log_lik",
    "VariationalGPConfig",
    "VariationalGPRun",
    "VariationalGPClassifier",
    "GP_SEEDS",
    "gp_classification_data",
    "train_variational_gp",
    "ExactGPConfig",
    "ExactGPRun",
    "SINE_INITIALISATIONS",
    "exact_gp_terms",
    "train_exact_gp",
    "lml_landscape",
]

DTYPE = torch.float64
_SOFTPLUS_LOG2 = math.log(2.0)
#: Linear-algebra failures that, during training, mean the hyperparameters ran away (divergence).
BREAKDOWN_ERRORS = (np.linalg.LinAlgError, torch.linalg.LinAlgError)


def require_gpytorch():
    """Import gpytorch or raise an ImportError that says how to get it."""
    try:
        import gpytorch  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "gpytorch is needed for this comparison; install the optional extra: "
            "pip install 'grokking-theory[gp]' (the GP systems themselves run without it)"
        ) from exc
    return gpytorch


def _inv_softplus(value: float) -> float:
    return float(value + math.log(-math.expm1(-value)))


def rbf_kernel(x1: torch.Tensor, x2: torch.Tensor, lengthscale: torch.Tensor, outputscale: torch.Tensor) -> torch.Tensor:
    """Eq 9 with ARD: ``θ · exp(−½ Σ_d (x1_d − x2_d)² / ℓ_d²)``; shapes (N, D), (M, D) → (N, M)."""
    lengthscale = torch.as_tensor(lengthscale, dtype=x1.dtype)
    outputscale = torch.as_tensor(outputscale, dtype=x1.dtype)
    a = x1 / lengthscale
    b = x2 / lengthscale
    sq = (a * a).sum(-1)[:, None] + (b * b).sum(-1)[None, :] - 2.0 * a @ b.T
    return outputscale * torch.exp(-0.5 * sq.clamp_min(0.0))


def gaussian_kl(mean_q: torch.Tensor, chol_q: torch.Tensor, mean_p: torch.Tensor, chol_p: torch.Tensor) -> torch.Tensor:
    """KL(N(m_q, L_q L_qᵀ) ‖ N(m_p, L_p L_pᵀ)) in closed form.

    ``½ [ tr(Σ_p⁻¹Σ_q) + (m_p − m_q)ᵀ Σ_p⁻¹ (m_p − m_q) − N + log|Σ_p| − log|Σ_q| ]``.
    """
    n = mean_q.shape[-1]
    a = torch.linalg.solve_triangular(chol_p, chol_q, upper=False)
    d = torch.linalg.solve_triangular(chol_p, (mean_p - mean_q)[:, None], upper=False)
    logdet_p = 2.0 * torch.log(torch.diagonal(chol_p).abs()).sum()
    logdet_q = 2.0 * torch.log(torch.diagonal(chol_q).abs()).sum()
    return 0.5 * ((a * a).sum() + (d * d).sum() - n + logdet_p - logdet_q)


_GH_CACHE: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}


def _gauss_hermite(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    if n not in _GH_CACHE:
        nodes, weights = np.polynomial.hermite.hermgauss(n)
        _GH_CACHE[n] = (torch.tensor(nodes, dtype=DTYPE), torch.tensor(weights, dtype=DTYPE))
    return _GH_CACHE[n]


def probit_expected_log_lik(labels01: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, n_points: int = 20) -> torch.Tensor:
    """E_{f ~ N(mean, var)}[log Φ(ỹ f)], ỹ = 2y − 1, by Gauss–Hermite quadrature (per point)."""
    nodes, weights = _gauss_hermite(n_points)
    f = mean[:, None] + math.sqrt(2.0) * var.clamp_min(0.0).sqrt()[:, None] * nodes[None, :]
    signs = (2.0 * labels01 - 1.0)[:, None]
    log_phi = torch.special.log_ndtr(signs * f)
    return (log_phi * weights[None, :]).sum(-1) / math.sqrt(math.pi)


def _safe_cholesky(matrix: torch.Tensor, jitter: float) -> torch.Tensor:
    """Cholesky of ``matrix + jitter·I``, raising the jitter tenfold (up to 6 times) on failure."""
    eye = torch.eye(matrix.shape[-1], dtype=matrix.dtype)
    for attempt in range(7):
        chol, info = torch.linalg.cholesky_ex(matrix + jitter * (10.0 ** attempt) * eye)
        if int(info) == 0:
            return chol
    raise np.linalg.LinAlgError(f"matrix not positive definite even with jitter {jitter * 1e6:g}")


# ================================================================================================
# §A.4 / §A.5 variational GP classification


@dataclass(frozen=True)
class VariationalGPConfig:
    """Settings of §A.4 (1-0 data) and §A.5 (concealed parity).

    Attributes
    ----------
    lengthscale_init : float or None
        Initial ARD lengthscale for every dimension (§A.4: 0.005); None keeps gpytorch's default
        softplus(0) = log 2 ≈ 0.693 (§A.5).
    outputscale_init : float or None
        None keeps gpytorch's default log 2.
    learning_rate : float
        Adam step (1e-2).
    iterations : int
        1500 (§A.4) or 500 (§A.5).
    prior_jitter : float
        Diagonal added to K_ZZ in the KL prior (gpytorch ``add_jitter()`` default, 1e-3).
    predict_jitter : float
        Diagonal added to K_ZZ in predictions at new inputs: gpytorch's
        ``variational_cholesky_jitter`` for float32, 1e-4 (the authors ran gpytorch in its default
        float32; its float64 value is 1e-6). It regularises K_ZZ⁻¹ when short lengthscales grow.
    mean_init_std : float
        Std of the noise added to the initial variational mean (1e-3).
    quadrature_points : int
        Gauss–Hermite points of the expected log-likelihood (20).
    record_lengthscales_at : tuple of int
        Iterations at which the ARD lengthscales are kept (App. H.1: 10, 50, 150), besides every
        iteration's full record.
    threshold : float
        τ of the grokking gap (0.95).
    """

    lengthscale_init: float | None = 0.005
    outputscale_init: float | None = None
    learning_rate: float = 1e-2
    iterations: int = 1500
    prior_jitter: float = 1e-3
    predict_jitter: float = 1e-4
    mean_init_std: float = 1e-3
    quadrature_points: int = 20
    threshold: float = 0.95

    def __post_init__(self) -> None:
        if self.lengthscale_init is not None:
            check_positive("lengthscale_init", self.lengthscale_init)
        if self.outputscale_init is not None:
            check_positive("outputscale_init", self.outputscale_init)
        check_positive("learning_rate", self.learning_rate)
        check_int_at_least("iterations", self.iterations, 1)
        check_positive("prior_jitter", self.prior_jitter)
        check_positive("predict_jitter", self.predict_jitter)
        if not (self.mean_init_std >= 0):
            raise InvalidParameterError(f"mean_init_std must lie in [0, inf), got {self.mean_init_std!r}")
        check_int_at_least("quadrature_points", self.quadrature_points, 2)
        if not 0 < self.threshold < 1:
            raise InvalidParameterError(f"threshold must lie in (0, 1), got {self.threshold!r}")


class VariationalGPClassifier(torch.nn.Module):
    """The §A.4 model: q(u) = N(m, LLᵀ) at u = f(X_train), prior N(c·1, θ K_ℓ(X, X)).

    Parameters are the constant mean c, the raw (softplus) ARD lengthscales and output scale, the
    variational mean m and the lower triangle of L (gpytorch's ``chol_variational_covar``).
    """

    def __init__(self, x_train: torch.Tensor, config: VariationalGPConfig, generator: torch.Generator):
        super().__init__()
        self.config = config
        self.register_buffer("inducing", x_train)
        n, dim = x_train.shape
        ls = _inv_softplus(config.lengthscale_init) if config.lengthscale_init is not None else 0.0
        os_ = _inv_softplus(config.outputscale_init) if config.outputscale_init is not None else 0.0
        self.constant_mean = torch.nn.Parameter(torch.zeros((), dtype=DTYPE))
        self.raw_lengthscale = torch.nn.Parameter(torch.full((dim,), ls, dtype=DTYPE))
        self.raw_outputscale = torch.nn.Parameter(torch.tensor(os_, dtype=DTYPE))
        with torch.no_grad():
            prior_chol = self._prior_cholesky()
            mean0 = self.constant_mean.expand(n) + config.mean_init_std * torch.randn(n, dtype=DTYPE, generator=generator)
        self.variational_mean = torch.nn.Parameter(mean0.clone())
        self.chol_variational_covar = torch.nn.Parameter(prior_chol.clone())
        self.register_buffer("_lower", torch.ones(n, n, dtype=DTYPE).tril())

    @property
    def lengthscale(self) -> torch.Tensor:
        return torch.nn.functional.softplus(self.raw_lengthscale)

    @property
    def outputscale(self) -> torch.Tensor:
        return torch.nn.functional.softplus(self.raw_outputscale)

    def _kernel(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return rbf_kernel(a, b, self.lengthscale, self.outputscale)

    def _prior_cholesky(self) -> torch.Tensor:
        return _safe_cholesky(self._kernel(self.inducing, self.inducing), self.config.prior_jitter)

    def variational_cholesky(self) -> torch.Tensor:
        return self.chol_variational_covar * self._lower

    def elbo_terms(self, y01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(data fit, complexity) = ((1/N) Σ E_q log p(y|f), KL(q‖p)/N) (App. F.2, eq 26)."""
        n = y01.shape[0]
        chol_s = self.variational_cholesky()
        var = (chol_s * chol_s).sum(-1)
        data_fit = probit_expected_log_lik(y01, self.variational_mean, var, self.config.quadrature_points).sum() / n
        kl = gaussian_kl(self.variational_mean, chol_s, self.constant_mean.expand(n), self._prior_cholesky())
        return data_fit, kl / n

    @torch.no_grad()
    def predict_latent(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(f(x)) (unwhitened strategy); exactly q(u) at the inducing inputs."""
        chol_s = self.variational_cholesky()
        if x.shape == self.inducing.shape and torch.equal(x, self.inducing):
            return self.variational_mean.clone(), (chol_s * chol_s).sum(-1)
        chol_k = _safe_cholesky(self._kernel(self.inducing, self.inducing), self.config.predict_jitter)
        k_zx = self._kernel(self.inducing, x)
        a = torch.cholesky_solve(k_zx, chol_k)  # K_ZZ⁻¹ K_Zx
        mean = self.constant_mean + a.T @ (self.variational_mean - self.constant_mean)
        half = torch.linalg.solve_triangular(chol_k, k_zx, upper=False)
        b = chol_s.T @ a
        var = self.outputscale - (half * half).sum(0) + (b * b).sum(0)
        return mean, var.clamp_min(0.0)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """p(y = 1 | x) = Φ(μ / √(1 + σ²)) (probit marginal)."""
        mean, var = self.predict_latent(x)
        return torch.special.ndtr(mean / torch.sqrt(1.0 + var))


@dataclass(frozen=True)
class VariationalGPRun:
    """One seed of §A.4/§A.5.

    Attributes
    ----------
    train_accuracy, val_accuracy : ndarray, shape (I,)
        Eval-mode accuracies after each iteration (class 1 iff p(y = 1) ≥ 0.5).
    data_fit, complexity : ndarray, shape (I,)
        (1/N) Σ E_q log p(y|f) and KL/N before each iteration's step.
    lengthscales : ndarray, shape (I + 1, D)
        ARD lengthscales at initialisation and after each iteration.
    outputscale, constant_mean : ndarray, shape (I + 1,)
    gap : GrokkingGap
    """

    seed: int
    dataset: str
    train_accuracy: np.ndarray
    val_accuracy: np.ndarray
    data_fit: np.ndarray
    complexity: np.ndarray
    lengthscales: np.ndarray
    outputscale: np.ndarray
    constant_mean: np.ndarray
    gap: GrokkingGap
    seconds: float = 0.0
    config: VariationalGPConfig = field(default_factory=VariationalGPConfig)

    def inverse_lengthscales(self, iteration: int) -> np.ndarray:
        """1/ℓ_d after ``iteration`` steps (App. H.1, Fig 12)."""
        return 1.0 / self.lengthscales[iteration]


def _binary_labels(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """GP labels: the scalar 0/1 of Dataset 8, or the *first* one-hot entry of parity (§A.5)."""
    y_train, y_val = np.asarray(data.y_train), np.asarray(data.y_val)
    if y_train.ndim == 2:
        return y_train[:, 0], y_val[:, 0]
    return y_train, y_val


def train_variational_gp(data: Dataset, seed: int, config: VariationalGPConfig | None = None,
                         progress: bool = False) -> VariationalGPRun:
    """Train the §A.4 model on ``data`` with Adam (full batch) and record every iteration.

    Raises
    ------
    empirical.bayes.divergence.TrainingDiverged
        At the first iteration whose ELBO terms or parameters are not finite, or whose kernel
        matrix is no longer positive definite (a learning rate too large for the hyperparameters).
    """
    from tqdm.auto import tqdm

    config = config or VariationalGPConfig()
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(int(seed))
    x_train = torch.tensor(data.x_train, dtype=DTYPE)
    x_val = torch.tensor(data.x_val, dtype=DTYPE)
    y_np, yv_np = _binary_labels(data)
    y_train = torch.tensor(y_np, dtype=DTYPE)
    model = VariationalGPClassifier(x_train, config, generator)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    I = config.iterations
    train_acc, val_acc, data_fit, complexity = (np.empty(I) for _ in range(4))
    lengthscales = np.empty((I + 1, x_train.shape[1]))
    outputscale, const = np.empty(I + 1), np.empty(I + 1)
    lengthscales[0] = model.lengthscale.detach().numpy()
    outputscale[0], const[0] = float(model.outputscale.detach()), float(model.constant_mean.detach())
    label = f"variational GP seed {seed}"
    for it in tqdm(range(I), disable=not progress, desc=label):
        with breakdown_diverges(label, it + 1, I, BREAKDOWN_ERRORS):
            optimiser.zero_grad()
            fit, kl = model.elbo_terms(y_train)
            (kl - fit).backward()
            optimiser.step()
            data_fit[it], complexity[it] = float(fit.detach()), float(kl.detach())
            stop_if_diverged(label, it + 1, I, "iteration", data_fit=data_fit[it], complexity=complexity[it],
                         parameters=list(model.parameters()))
            train_acc[it] = float(np.mean((model.predict_proba(x_train).numpy() >= 0.5) == (y_np > 0.5)))
            val_acc[it] = float(np.mean((model.predict_proba(x_val).numpy() >= 0.5) == (yv_np > 0.5)))
        lengthscales[it + 1] = model.lengthscale.detach().numpy()
        outputscale[it + 1], const[it + 1] = float(model.outputscale.detach()), float(model.constant_mean.detach())
    return VariationalGPRun(
        seed=int(seed), dataset=data.name, train_accuracy=train_acc, val_accuracy=val_acc, data_fit=data_fit,
        complexity=complexity, lengthscales=lengthscales, outputscale=outputscale, constant_mean=const,
        gap=grokking_gap(train_acc, val_acc, config.threshold), seconds=time.perf_counter() - start, config=config,
    )


#: Seeds of §A.4/§A.5.
GP_SEEDS = (42, 52, 62, 72, 82)


def gp_classification_data(task: str, seed: int, **kwargs) -> Dataset:
    """Dataset of §A.4 (``task="one_zero"``) or §A.5 (``"parity"``, k = 3, n = 40, 1000 + 100)."""
    if task == "one_zero":
        return one_zero(seed=seed, **kwargs)
    if task == "parity":
        return parity(seed=seed, **{"k": 3, "n_total_dim": 40, "n_samples": 1100, "n_train": 1000, **kwargs})
    raise InvalidParameterError(f"task must be 'one_zero' or 'parity', got {task!r}")


def variational_arrays(runs: Sequence[VariationalGPRun]) -> dict:
    """Arrays for :func:`comparisons.store.write_record`."""
    return {f"seed{r.seed}": dict(
        iteration=np.arange(len(r.train_accuracy)), train_accuracy=r.train_accuracy, val_accuracy=r.val_accuracy,
        data_fit=r.data_fit, complexity=r.complexity, lengthscales=r.lengthscales, outputscale=r.outputscale,
        constant_mean=r.constant_mean, gap=np.array([r.gap.t_train, r.gap.t_val, r.gap.gap]),
        gap_censored=np.array([r.gap.train_censored, r.gap.val_censored])) for r in runs}


# ================================================================================================
# §A.7 exact GP regression on the sine


#: (log ℓ, log θ) of §A.7, in the order of the figure labels.
SINE_INITIALISATIONS: dict[str, tuple[float, float]] = {"A": (-6.0, -4.0), "B": (-6.0, 4.0), "C": (0.0, 2.0)}


@dataclass(frozen=True)
class ExactGPConfig:
    """Settings of §A.7.

    Attributes
    ----------
    learning_rate : float
        Adam step (0.04).
    iterations : int
        3000.
    noise_init : float
        Initial Gaussian noise variance σ_n² (0.01).
    train_noise, train_mean : bool
        Whether σ_n² and the constant mean are optimised (Decision D.8: both, as in the code).
    threshold_factor : float
        Factor of the §C.4 "settled" time: first iteration with MSE < factor × final MSE (2).
    """

    learning_rate: float = 0.04
    iterations: int = 3000
    noise_init: float = 0.01
    train_noise: bool = True
    train_mean: bool = True
    threshold_factor: float = 2.0

    def __post_init__(self) -> None:
        check_positive("learning_rate", self.learning_rate)
        check_int_at_least("iterations", self.iterations, 1)
        if not self.noise_init > 1e-4:
            raise InvalidParameterError(f"noise_init must lie in (1e-4, inf) (gpytorch's noise floor), got {self.noise_init!r}")
        check_positive("threshold_factor", self.threshold_factor)


def exact_gp_terms(x: torch.Tensor, y: torch.Tensor, log_lengthscale: torch.Tensor, log_outputscale: torch.Tensor,
                   noise: torch.Tensor, mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq 6 divided by N, split as (LML, data fit, complexity) (§A.7).

    ``data fit = −½ rᵀK_y⁻¹r / N``, ``complexity = −½ log|K_y| / N``,
    ``LML = data fit + complexity − ½ log 2π``, with r = y − m and K_y = K + σ_n² I.
    Broadcasts over leading batch dimensions of the hyperparameters (landscapes).
    """
    n = y.shape[-1]
    ls = torch.exp(torch.as_tensor(log_lengthscale, dtype=DTYPE))[..., None, None]
    th = torch.exp(torch.as_tensor(log_outputscale, dtype=DTYPE))[..., None, None]
    sq = (x[:, None, 0] - x[None, :, 0]) ** 2
    k_y = th * torch.exp(-0.5 * sq / ls ** 2) + torch.as_tensor(noise, dtype=DTYPE)[..., None, None] * torch.eye(n, dtype=DTYPE)
    chol = torch.linalg.cholesky(k_y)
    r = (y - torch.as_tensor(mean, dtype=DTYPE)[..., None])[..., None]
    alpha = torch.linalg.solve_triangular(chol, r, upper=False)
    data_fit = -0.5 * (alpha ** 2).sum((-1, -2)) / n
    complexity = -torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1) / n
    return data_fit + complexity - 0.5 * math.log(2 * math.pi), data_fit, complexity


def _exact_posterior_mean(x_train, y, x_new, log_ls, log_os, noise, mean) -> torch.Tensor:
    ls, th = torch.exp(log_ls), torch.exp(log_os)
    k = th * torch.exp(-0.5 * (x_train[:, None, 0] - x_train[None, :, 0]) ** 2 / ls ** 2)
    k_star = th * torch.exp(-0.5 * (x_new[:, None, 0] - x_train[None, :, 0]) ** 2 / ls ** 2)
    k_y = k + noise * torch.eye(len(y), dtype=DTYPE)
    return mean + k_star @ torch.linalg.solve(k_y, y - mean)


@dataclass(frozen=True)
class ExactGPRun:
    """One initialisation of §A.7.

    Attributes
    ----------
    case : str
        ``"A"``, ``"B"`` or ``"C"``.
    log_lengthscale, log_outputscale, noise, constant_mean : ndarray, shape (I + 1,)
        Trajectory (initial value first).
    lml, data_fit, complexity : ndarray, shape (I,)
        Eq 6 terms / N before each step.
    train_mse, val_mse : ndarray, shape (I,)
        MSE of the posterior mean after each step (Fig 5 bottom row).
    """

    case: str
    log_lengthscale: np.ndarray
    log_outputscale: np.ndarray
    noise: np.ndarray
    constant_mean: np.ndarray
    lml: np.ndarray
    data_fit: np.ndarray
    complexity: np.ndarray
    train_mse: np.ndarray
    val_mse: np.ndarray
    seconds: float = 0.0
    config: ExactGPConfig = field(default_factory=ExactGPConfig)

    def settle_iteration(self, which: str = "val") -> int:
        """First iteration (0-based) with MSE < factor × final MSE (§C.4)."""
        mse = self.val_mse if which == "val" else self.train_mse
        return first_crossing(mse, self.config.threshold_factor * mse[-1], above=False).index

    @property
    def settle_ratio(self) -> float:
        """(t_val + 1)/(t_train + 1): the §C.4 ratio, with iterations counted from 1."""
        return (self.settle_iteration("val") + 1) / (self.settle_iteration("train") + 1)


def train_exact_gp(data: Dataset, case: str | tuple[float, float] = "B", config: ExactGPConfig | None = None,
                   progress: bool = False) -> ExactGPRun:
    """Train the §A.7 exact GP from initialisation ``case`` with Adam on −LML/N.

    Raises
    ------
    empirical.bayes.divergence.TrainingDiverged
        At the first iteration whose LML, hyperparameters or MSEs are not finite, or whose kernel
        matrix is no longer positive definite (a learning rate too large for the hyperparameters).
    """
    from tqdm.auto import tqdm

    config = config or ExactGPConfig()
    start = time.perf_counter()
    if isinstance(case, str):
        if case not in SINE_INITIALISATIONS:
            raise InvalidParameterError(f"case must be one of {sorted(SINE_INITIALISATIONS)}, got {case!r}")
        name, (ls0, os0) = case, SINE_INITIALISATIONS[case]
    else:
        name, (ls0, os0) = "custom", map(float, case)
    x = torch.tensor(data.x_train, dtype=DTYPE)
    y = torch.tensor(data.y_train, dtype=DTYPE)
    xv = torch.tensor(data.x_val, dtype=DTYPE)
    yv = torch.tensor(data.y_val, dtype=DTYPE)
    log_ls = torch.nn.Parameter(torch.tensor(ls0, dtype=DTYPE))
    log_os = torch.nn.Parameter(torch.tensor(os0, dtype=DTYPE))
    raw_noise = torch.nn.Parameter(torch.tensor(_inv_softplus(config.noise_init - 1e-4), dtype=DTYPE))
    mean = torch.nn.Parameter(torch.zeros((), dtype=DTYPE))
    params = [log_ls, log_os] + ([raw_noise] if config.train_noise else []) + ([mean] if config.train_mean else [])
    optimiser = torch.optim.Adam(params, lr=config.learning_rate)

    def noise_value():
        return 1e-4 + torch.nn.functional.softplus(raw_noise)

    I = config.iterations
    traj = np.empty((I + 1, 4))
    lml, fit, comp, tr_mse, va_mse = (np.empty(I) for _ in range(5))
    traj[0] = [ls0, os0, float(noise_value().detach()), 0.0]
    label = f"exact GP case {name}"
    for it in tqdm(range(I), disable=not progress, desc=label):
        with breakdown_diverges(label, it + 1, I, BREAKDOWN_ERRORS):
            optimiser.zero_grad()
            value, d, c = exact_gp_terms(x, y, log_ls, log_os, noise_value(), mean)
            (-value).backward()
            optimiser.step()
            lml[it], fit[it], comp[it] = float(value.detach()), float(d.detach()), float(c.detach())
            stop_if_diverged(label, it + 1, I, "iteration", log_marginal_likelihood=lml[it], hyperparameters=params)
            with torch.no_grad():
                nz = noise_value()
                tr_mse[it] = float(((_exact_posterior_mean(x, y, x, log_ls, log_os, nz, mean) - y) ** 2).mean())
                va_mse[it] = float(((_exact_posterior_mean(x, y, xv, log_ls, log_os, nz, mean) - yv) ** 2).mean())
                stop_if_diverged(label, it + 1, I, "iteration", train_mse=tr_mse[it], validation_mse=va_mse[it])
                traj[it + 1] = [float(log_ls), float(log_os), float(nz), float(mean)]
    return ExactGPRun(case=name, log_lengthscale=traj[:, 0], log_outputscale=traj[:, 1], noise=traj[:, 2],
                      constant_mean=traj[:, 3], lml=lml, data_fit=fit, complexity=comp, train_mse=tr_mse,
                      val_mse=va_mse, seconds=time.perf_counter() - start, config=config)


@dataclass(frozen=True)
class Landscape:
    """Objective terms on a (log θ, log ℓ) grid (§A.7 / §A.9).

    Attributes
    ----------
    log_lengthscale : ndarray, shape (L,)
    log_outputscale : ndarray, shape (S,)
    terms : Mapping[str, ndarray of shape (S, L)]
        e.g. ``lml``, ``data_fit``, ``complexity``; row i ↔ log_outputscale[i].
    """

    log_lengthscale: np.ndarray
    log_outputscale: np.ndarray
    terms: Mapping[str, np.ndarray]


def lml_landscape(data: Dataset, n_grid: int = 100, log_lengthscale_range=(-7.0, 4.0),
                  log_outputscale_range=(-5.0, 5.0), noise: float = 0.01, mean: float = 0.0) -> Landscape:
    """LML, data-fit and complexity (each / N) of §A.7 on an ``n_grid``² grid (100×100 in the spec).

    The landscape holds the noise at its initial 0.01 and the constant mean at 0 (the values the
    three trajectories start from).
    """
    check_int_at_least("n_grid", n_grid, 2)
    check_positive("noise", noise)
    ls = np.linspace(*log_lengthscale_range, n_grid)
    os_ = np.linspace(*log_outputscale_range, n_grid)
    x = torch.tensor(data.x_train, dtype=DTYPE)
    y = torch.tensor(data.y_train, dtype=DTYPE)
    grid_os, grid_ls = np.meshgrid(os_, ls, indexing="ij")
    with torch.no_grad():
        lml, fit, comp = exact_gp_terms(x, y, torch.tensor(grid_ls, dtype=DTYPE), torch.tensor(grid_os, dtype=DTYPE),
                                        torch.tensor(noise, dtype=DTYPE), torch.tensor(mean, dtype=DTYPE))
    return Landscape(ls, os_, {"lml": lml.numpy(), "data_fit": fit.numpy(), "complexity": comp.numpy()})


def exact_arrays(runs: Sequence[ExactGPRun], landscape: Landscape | None = None) -> dict:
    out = {f"case{r.case}": dict(
        iteration=np.arange(len(r.lml)), log_lengthscale=r.log_lengthscale, log_outputscale=r.log_outputscale,
        noise=r.noise, constant_mean=r.constant_mean, lml=r.lml, data_fit=r.data_fit, complexity=r.complexity,
        train_mse=r.train_mse, val_mse=r.val_mse,
        settle=np.array([r.settle_iteration("train"), r.settle_iteration("val")])) for r in runs}
    if landscape is not None:
        out["landscape"] = dict(log_lengthscale=landscape.log_lengthscale, log_outputscale=landscape.log_outputscale,
                                **landscape.terms)
    return out
