"""Symmetries of the committee-machine DMFT and the projection onto their invariant subspace.

theory.md §9.2. The dynamics is equivariant under

* permutations P of the hidden units (with the rows and columns of C_w, R_w, C_g, R_g and the
  entries of m, r*), and
* the teacher reflection β → −β, which maps h* → −h*, m → −m and r* → −r* and leaves every
  other order parameter and both losses unchanged (the target y = h*²/2 is even).

Flipping the sign of one unit is *not* a symmetry: the readouts are fixed to 1, so w_i → −w_i
changes f even when φ is odd. The subgroup that leaves the initial condition (m(0), C_w(0,0))
invariant, G = {(P, s) : s·P m(0) = m(0), P C_w(0,0) Pᵀ = C_w(0,0)}, then leaves the whole
solution invariant. Averaging an estimate over G is the orthogonal projection onto the
G-invariant subspace: it removes the asymmetric part of the Monte Carlo noise exactly (the part
that an unstable symmetry-breaking direction would otherwise amplify) and, because the estimators
are linear in the samples, equals averaging every Monte Carlo sample over its orbit.

With a committee teacher of M units (theory.md §10.7) the target y = (κ*/M) Σ_m φ*(β_m·x) is
invariant under permutations Π of the teacher units, and under β → −β only when φ* is even. The
group then acts on the N × M overlaps as m → s·P m Πᵀ (:func:`committee_invariance_group`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

__all__ = ["SymmetryGroup", "invariance_group", "committee_invariance_group"]


@dataclass(frozen=True)
class SymmetryGroup:
    """A group of signed unit permutations g = (P, s): x_i → s·x_{P(i)} for odd quantities.

    Attributes
    ----------
    permutations : ndarray, shape (G, N)
        ``permutations[g]`` lists, for each unit i, the unit whose value moves to i.
    signs : ndarray, shape (G,)
        +1, or −1 where the element includes the teacher reflection.
    teacher_permutations : ndarray, shape (G, M), optional
        Permutations of the teacher units (committee teachers); then unit quantities have shape
        (..., N, M) and transform as s·P v Πᵀ.
    """

    permutations: np.ndarray
    signs: np.ndarray
    teacher_permutations: np.ndarray | None = None

    @classmethod
    def identity(cls, width: int) -> "SymmetryGroup":
        """The trivial group (no projection)."""
        return cls(permutations=np.arange(width, dtype=np.intp)[None, :], signs=np.ones(1))

    @property
    def order(self) -> int:
        return int(self.signs.size)

    @property
    def trivial(self) -> bool:
        return self.order == 1

    def project_pairs(self, blocks: np.ndarray) -> np.ndarray:
        """Average of P A Pᵀ over the group for arrays of N×N blocks, shape (..., N, N)."""
        if self.trivial:
            return blocks
        out = np.zeros_like(blocks)
        for perm in self.permutations:
            out += blocks[..., perm[:, None], perm[None, :]]
        return out / self.order

    def project_units(self, values: np.ndarray, odd: bool) -> np.ndarray:
        """Average of (s·)P v over the group for arrays of unit vectors, shape (..., N).

        ``odd`` marks quantities that change sign under the teacher reflection (m, r*).
        """
        if self.trivial:
            return values
        out = np.zeros_like(values)
        if self.teacher_permutations is None:
            for perm, sign in zip(self.permutations, self.signs):
                out += (sign if odd else 1.0) * values[..., perm]
        else:
            for perm, tperm, sign in zip(self.permutations, self.teacher_permutations, self.signs):
                out += (sign if odd else 1.0) * values[..., perm, :][..., tperm]
        return out / self.order


def invariance_group(init_overlap: np.ndarray, init_cov: np.ndarray, atol: float = 1e-12) -> SymmetryGroup:
    """All signed unit permutations that leave (m(0), C_w(0,0)) invariant (theory.md §9.2).

    Enumerates the N!·2 candidates (N ≤ 8 is cheap) and keeps those with
    s·m(0)[P] = m(0) and C_w(0,0)[P][:, P] = C_w(0,0) to ``atol``.
    """
    m0 = np.asarray(init_overlap, dtype=float)
    cov0 = np.asarray(init_cov, dtype=float)
    n = m0.size
    perms, signs = [], []
    for perm in itertools.permutations(range(n)):
        p = np.array(perm)
        if not np.allclose(cov0[p[:, None], p[None, :]], cov0, rtol=0, atol=atol):
            continue
        for sign in (1.0, -1.0):
            if np.allclose(sign * m0[p], m0, rtol=0, atol=atol):
                perms.append(p)
                signs.append(sign)
    return SymmetryGroup(permutations=np.array(perms, dtype=np.intp), signs=np.array(signs))


def committee_invariance_group(init_overlap: np.ndarray, init_cov: np.ndarray, teacher_cov: np.ndarray, *,
                               teacher_even: bool, atol: float = 1e-12) -> SymmetryGroup:
    """Student and teacher permutations (and the teacher reflection when φ* is even) that leave
    (R(0), Q(0), T) invariant: s·P R(0) Πᵀ = R(0), P Q(0) Pᵀ = Q(0), Π T Πᵀ = T (theory.md §9.2, §10.7).

    Enumerates N!·M!·(1 or 2) candidates (cheap for the widths a DMFT is solved at).
    """
    R0 = np.asarray(init_overlap, dtype=float)
    Q0 = np.asarray(init_cov, dtype=float)
    T = np.asarray(teacher_cov, dtype=float)
    n, m = R0.shape
    perms, tperms, signs = [], [], []
    student_perms = [np.array(p) for p in itertools.permutations(range(n))
                     if np.allclose(Q0[np.ix_(p, p)], Q0, rtol=0, atol=atol)]
    teacher_perms = [np.array(p) for p in itertools.permutations(range(m))
                     if np.allclose(T[np.ix_(p, p)], T, rtol=0, atol=atol)]
    for p in student_perms:
        for q in teacher_perms:
            for sign in ((1.0, -1.0) if teacher_even else (1.0,)):
                if np.allclose(sign * R0[np.ix_(p, q)], R0, rtol=0, atol=atol):
                    perms.append(p)
                    tperms.append(q)
                    signs.append(sign)
    return SymmetryGroup(permutations=np.array(perms, dtype=np.intp), signs=np.array(signs),
                         teacher_permutations=np.array(tperms, dtype=np.intp))

