"""One full-batch gradient step of the paper's committee machine, fused over the samples (Numba).

The NumPy step of :func:`dmft.simulate.simulate_gd` reads the P × D inputs twice per step:
H = X Wᵀ, then the gradient (r ⊙ φ′(H))ᵀ X. At large D that is all the step costs (P·D·N
multiply-adds per product against 2·P·D·N for the whole step, and P·D numbers to stream from
memory each time), so this kernel takes each input row once: its N fields, its residual and its
contribution to the gradient while the row is in the first-level cache. Counted per step, with
N = 2 and X stored in float32: 4·P·D·N flops and 4·P·D bytes (0.64 GB at P = 40000, D = 4000),
against 8·P·D bytes for the float64 NumPy step.

The samples are cut into a fixed number of chunks, each summed by one thread into its own
gradient, and the chunks added in order: the result does not depend on the thread count.
"""

from __future__ import annotations

import numba
import numpy as np

#: Sample chunks per step (a multiple of any thread count one uses; the sums are done per chunk).
CHUNKS = 16


#: Reassociation lets LLVM vectorise the dot products; no finite-math assumptions, so an overflow
#: still shows as inf/NaN in the loss.
_FAST = {"reassoc", "contract", "nsz", "arcp"}


@numba.njit(parallel=True, cache=True, fastmath=_FAST)
def _gradient_chunks(inputs, weights, shifted_targets, coupling, epsilon, chunks):
    """Per-chunk sums of r_μ² and of r_μ φ′(h_iμ) x_μ (theory.md §0: f = (κ/N) Σ_i φ(h_i)).

    r_μ = (κ/N) Σ_i (h_iμ + ε h_iμ²/2) − ỹ_μ with ỹ the targets plus the initial output when centred.
    """
    P, D = inputs.shape
    N = weights.shape[0]
    grad = np.zeros((chunks, N, D))
    squares = np.zeros(chunks)
    for c in numba.prange(chunks):
        lo = c * P // chunks
        hi = (c + 1) * P // chunks
        fields = np.empty(N)
        for mu in range(lo, hi):
            output = 0.0
            for i in range(N):
                h = 0.0
                for k in range(D):
                    h += inputs[mu, k] * weights[i, k]
                fields[i] = h
                output += h + 0.5 * epsilon * h * h
            residual = coupling * output - shifted_targets[mu]
            squares[c] += residual * residual
            for i in range(N):
                g = residual * (1.0 + epsilon * fields[i])
                for k in range(D):
                    grad[c, i, k] += g * inputs[mu, k]
    return squares, grad


def loss_and_gradient(inputs, weights, shifted_targets, scale, epsilon):
    """Train loss L = (1/P) Σ_μ r_μ² and its gradient ∂L/∂W (N × D), in one pass over the inputs.

    Parameters
    ----------
    inputs : ndarray, (P, D), float32 or float64
    weights : ndarray, (N, D), float64
    shifted_targets : ndarray, (P,), float64
        y_μ, plus f(x_μ; W(0)) for the centred model.
    scale, epsilon : float
        κ and ε of f = (κ/N) Σ_i (h_i + ε h_i²/2).
    """
    P = inputs.shape[0]
    N = weights.shape[0]
    coupling = scale / N
    squares, grad = _gradient_chunks(inputs, weights, shifted_targets, coupling, epsilon, CHUNKS)
    gradient = np.zeros_like(weights)
    for chunk in grad:                           # in order: independent of the thread count
        gradient += chunk
    return float(squares.sum()) / P, (2.0 / P) * coupling * gradient
