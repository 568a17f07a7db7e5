"""Algorithmic data sets of Power et al. (2022) and the Arn thesis (seed_systems.md §B.2–B.3).

A *task* is the complete operation table of a binary operator ``a ∘ b = c`` on a finite set of
elements (the residues 0..p−1, the 120 permutations of S5, or the elements of a group given by its
Cayley table). Every equation of the table is enumerated; the fixed train/validation split
shuffles them with ``np.random.RandomState(0)`` and puts the first ``round(N · pct / 100)`` into
training (§B.2), so the split never depends on the model seed.

Operators (§B.3; canonical name first, Power's ``VALID_OPERATORS`` string accepted as an alias):

=====================  ==========================================  =========================
canonical name          rule                                        Power string
=====================  ==========================================  =========================
``+`` ``-`` ``*``       (x ∘ y) mod p                               same
``/``                   x·y⁻¹ mod p, y ≠ 0; enumerated as           ``/``
                        ``(b·c mod p) / b = c`` over (c, b)
``x**2+y**2``           (x² + y²) mod p                             ``x**2+y**2_mod_97``
``x**2+y**2+x*y``       (x² + y² + xy) mod p                        ``x**2+y**2+x*y_mod_97``
``x**2+y**2+x*y+x``     (x² + y² + xy + x) mod p                    ``x**2+y**2+x*y+x_mod_97``
``x**3+x*y``            (x³ + xy) mod p                             ``x**3+x*y_mod_97``
``x**3+x*y**2+y``       (x³ + xy² + y) mod p                        ``x**3+x*y**2+y_mod_97``
``mix1``                x·y⁻¹ mod p if y is odd, else (x − y) mod p  ``(x._value//y)if(...)``
                        (Decision D.14: Power's stated rule)
``+*`` / ``+-``         x even: x + y; x odd: x·y / x − y (mod p)  same
``s5``                  c = b[a], i.e. c_i = b_{a_i}                ``s5``
``s5conj``              a·b·a⁻¹ (sympy product: (p·q)(i) = q(p(i)))  ``s5conj``
``s5aba``               a·b·a (same product)                        ``s5aba``
=====================  ==========================================  =========================

Power's unary list tasks (``sort``, ``reverse``, ``copy``) are not binary tables and are not
implemented (the thesis does not use them).

Token vocabulary (§B.2): ``<|eos|>``, ``=``, the 20 operator strings of Power's list (sorted),
the numbers 0..p−1, the 120 permutations of (0..4), then the elements of a custom group if any.
For p = 97 this is Power's 239-token vocabulary.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from dmft.parameters import InvalidParameterError, check_int_at_least

__all__ = [
    "MODULAR_OPERATORS",
    "PERMUTATION_OPERATORS",
    "OPERATORS",
    "POWER_OPERATOR_STRINGS",
    "EOS_TOKEN",
    "EQ_TOKEN",
    "AlgorithmicTask",
    "AlgorithmicSplit",
    "canonical_operator",
    "make_task",
    "group_task",
    "split_equations",
    "train_size",
    "s5_elements",
    "compose_permutations",
    "invert_permutation",
    "check_group_axioms",
    "load_cayley_table",
    "dihedral_cayley_table",
    "is_prime",
    "Vocabulary",
    "encode_equations",
]

EOS_TOKEN = "<|eos|>"
EQ_TOKEN = "="

#: Power et al.'s ``VALID_OPERATORS`` keys (openai/grok), used as operator tokens (§B.2–B.3).
POWER_OPERATOR_STRINGS = (
    "+", "-", "*", "/", "**2+", "**3+",
    "x**2+y**2_mod_97", "x**2+y**2+x*y_mod_97", "x**2+y**2+x*y+x_mod_97",
    "x**3+x*y_mod_97", "x**3+x*y**2+y_mod_97",
    "(x._value//y)if(y._value%2==1)else(x-y)_mod_97",
    "s5", "s5conj", "s5aba", "+*", "+-", "sort", "reverse", "copy",
)

#: Canonical modular operator → (Power token, description).
MODULAR_OPERATORS = {
    "+": ("+", "(x + y) mod p"),
    "-": ("-", "(x - y) mod p"),
    "*": ("*", "(x * y) mod p"),
    "/": ("/", "x * y^-1 mod p, y != 0"),
    "x**2+y**2": ("x**2+y**2_mod_97", "(x^2 + y^2) mod p"),
    "x**2+y**2+x*y": ("x**2+y**2+x*y_mod_97", "(x^2 + y^2 + xy) mod p"),
    "x**2+y**2+x*y+x": ("x**2+y**2+x*y+x_mod_97", "(x^2 + y^2 + xy + x) mod p"),
    "x**3+x*y": ("x**3+x*y_mod_97", "(x^3 + xy) mod p"),
    "x**3+x*y**2+y": ("x**3+x*y**2+y_mod_97", "(x^3 + xy^2 + y) mod p"),
    "mix1": ("(x._value//y)if(y._value%2==1)else(x-y)_mod_97", "x/y mod p if y odd, else (x - y) mod p"),
    "+*": ("+*", "x even: (x + y) mod p, x odd: (x * y) mod p"),
    "+-": ("+-", "x even: (x + y) mod p, x odd: (x - y) mod p"),
}

#: Canonical S5 operator → description.
PERMUTATION_OPERATORS = {
    "s5": "c = b[a] (c_i = b_{a_i})",
    "s5conj": "a b a^-1 (sympy product, (p q)(i) = q(p(i)))",
    "s5aba": "a b a (sympy product)",
}

#: Every binary operator of §B.3 (canonical names).
OPERATORS = tuple(MODULAR_OPERATORS) + tuple(PERMUTATION_OPERATORS)

#: Operators that need a multiplicative inverse mod p (p must be prime).
_NEEDS_PRIME = ("/", "mix1")

_ALIASES = {token: name for name, (token, _) in MODULAR_OPERATORS.items()}


def canonical_operator(name: str) -> str:
    """Canonical operator name for ``name`` (a canonical name or Power's string).

    Power's ``_mod_97`` strings map to the modular operator for any modulus p.

    Raises
    ------
    ValueError
        If ``name`` is not a binary operator of §B.3.
    """
    if name in OPERATORS:
        return name
    if name in _ALIASES:
        return _ALIASES[name]
    if isinstance(name, str) and "_mod_" in name:
        stem = name.split("_mod_")[0]
        if stem in MODULAR_OPERATORS:
            return stem
    raise InvalidParameterError(f"operator must be one of {', '.join(OPERATORS)} (or Power's string), got {name!r}")


def is_prime(n: int) -> bool:
    """Whether the integer ``n`` is prime (trial division)."""
    if n < 2:
        return False
    return all(n % d for d in range(2, math.isqrt(n) + 1))


# --------------------------------------------------------------------------------------------
# Permutations of S5 (array form: a[i] is the image of i).


def s5_elements() -> np.ndarray:
    """The 120 permutations of (0..4) in lexicographic order, shape (120, 5)."""
    return np.array(list(itertools.permutations(range(5))), dtype=np.int64)


def compose_permutations(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Product "first, then second": ``result[..., i] = second[..., first[..., i]]``.

    This is sympy's ``first * second`` and Power's ``s5`` rule ``c = b[a]`` with
    ``first = a``, ``second = b``. Broadcasts over leading axes.
    """
    first = np.asarray(first)
    second = np.asarray(second)
    return np.take_along_axis(second, first, axis=-1)


def invert_permutation(perm: np.ndarray) -> np.ndarray:
    """Inverse permutation(s): ``inv[..., perm[..., i]] = i``."""
    perm = np.asarray(perm)
    inv = np.empty_like(perm)
    idx = np.broadcast_to(np.arange(perm.shape[-1]), perm.shape)
    np.put_along_axis(inv, perm, idx, axis=-1)
    return inv


# --------------------------------------------------------------------------------------------
# Tasks


@dataclass(frozen=True)
class AlgorithmicTask:
    """Complete operation table of a binary operator, in enumeration order (§B.2–B.3).

    Attributes
    ----------
    operator : str
        Canonical operator name (or the group's name for a Cayley-table task).
    operator_token : str
        The token that stands between the operands (Power's string).
    modulus : int or None
        p for modular tasks; None for group tasks.
    element_tokens : tuple of str
        Token of each element index 0..n−1 (``"7"``, ``"01234"``, ``"g5"``).
    equations : ndarray, shape (n_equations, 3)
        Rows (a, b, c) of element indices, in the enumeration order before shuffling.
    """

    operator: str
    operator_token: str
    modulus: int | None
    element_tokens: tuple[str, ...]
    equations: np.ndarray

    @property
    def n_elements(self) -> int:
        return len(self.element_tokens)

    @property
    def n_equations(self) -> int:
        return int(self.equations.shape[0])

    def table(self) -> np.ndarray:
        """Operation table ``T[a, b] = c`` with −1 where undefined (b = 0 for ``/``)."""
        n = self.n_elements
        table = np.full((n, n), -1, dtype=np.int64)
        table[self.equations[:, 0], self.equations[:, 1]] = self.equations[:, 2]
        return table


def _modular_rule(operator: str, p: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    inverse = None
    if operator in _NEEDS_PRIME:
        inverse = np.zeros(p, dtype=np.int64)
        inverse[1:] = [pow(int(y), -1, p) for y in range(1, p)]
    rules = {
        "+": lambda x, y: (x + y) % p,
        "-": lambda x, y: (x - y) % p,
        "*": lambda x, y: (x * y) % p,
        "x**2+y**2": lambda x, y: (x * x + y * y) % p,
        "x**2+y**2+x*y": lambda x, y: (x * x + y * y + x * y) % p,
        "x**2+y**2+x*y+x": lambda x, y: (x * x + y * y + x * y + x) % p,
        "x**3+x*y": lambda x, y: (x * x * x + x * y) % p,
        "x**3+x*y**2+y": lambda x, y: (x * x * x + x * y * y + y) % p,
        "mix1": lambda x, y: np.where(y % 2 == 1, (x * inverse[y]) % p, (x - y) % p),
        "+*": lambda x, y: np.where(x % 2 == 0, (x + y) % p, (x * y) % p),
        "+-": lambda x, y: np.where(x % 2 == 0, (x + y) % p, (x - y) % p),
    }
    return rules[operator]


def make_task(operator: str, modulus: int = 97) -> AlgorithmicTask:
    """Operation table of a §B.3 operator.

    Parameters
    ----------
    operator : str
        Canonical name or Power's string (see the module docstring).
    modulus : int, default 97
        The prime p of the modular tasks (ignored by the S5 tasks). ``/`` and ``mix1`` need a
        prime; the others accept any p ≥ 2.

    Returns
    -------
    AlgorithmicTask
        p² equations (p(p−1) for ``/``; 14400 for S5), enumerated over (x, y) in lexicographic
        order (over (c, b) for ``/``, as Power's generator does).
    """
    operator = canonical_operator(operator)
    if operator in PERMUTATION_OPERATORS:
        perms = s5_elements()
        index = {tuple(p): i for i, p in enumerate(perms)}
        a_idx, b_idx = np.meshgrid(np.arange(120), np.arange(120), indexing="ij")
        a_idx, b_idx = a_idx.ravel(), b_idx.ravel()
        a, b = perms[a_idx], perms[b_idx]
        if operator == "s5":
            c = compose_permutations(a, b)
        elif operator == "s5conj":
            c = compose_permutations(compose_permutations(a, b), invert_permutation(a))
        else:
            c = compose_permutations(compose_permutations(a, b), a)
        c_idx = np.array([index[tuple(row)] for row in c], dtype=np.int64)
        tokens = tuple("".join(map(str, p)) for p in perms)
        return AlgorithmicTask(operator, operator, None, tokens, np.stack([a_idx, b_idx, c_idx], axis=1))

    p = check_int_at_least("modulus", modulus, 2)
    if operator in _NEEDS_PRIME and not is_prime(p):
        raise InvalidParameterError(f"modulus must be a prime for operator {operator!r} (needs y^-1 mod p), got {p}")
    token = MODULAR_OPERATORS[operator][0]
    if operator == "/":
        c, b = np.meshgrid(np.arange(p), np.arange(1, p), indexing="ij")
        c, b = c.ravel(), b.ravel()
        a = (b * c) % p
    else:
        a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
        a, b = a.ravel(), b.ravel()
        c = _modular_rule(operator, p)(a, b)
    tokens = tuple(str(i) for i in range(p))
    return AlgorithmicTask(operator, token, p, tokens, np.stack([a, b, c], axis=1).astype(np.int64))


# --------------------------------------------------------------------------------------------
# Finite groups from Cayley tables


def check_group_axioms(table: np.ndarray) -> int:
    """Check that ``table[a, b] = a·b`` is a group; return the identity's index.

    Checks closure (entries in range), associativity (all n³ triples), a two-sided identity and
    inverses.

    Raises
    ------
    ValueError
        Naming the first axiom that fails.
    """
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[0] != table.shape[1] or table.shape[0] < 1:
        raise InvalidParameterError(f"table must be a square n x n array, got shape {table.shape}")
    n = table.shape[0]
    if not np.issubdtype(table.dtype, np.integer) or table.min() < 0 or table.max() >= n:
        raise InvalidParameterError(f"table entries must be element indices in [0, {n - 1}] (closure)")
    left = table[table, :]            # (a·b)·c  → left[a, b, c] = table[table[a, b], c]
    right = table[:, table]           # a·(b·c)  → right[a, b, c] = table[a, table[b, c]]
    if not np.array_equal(left, right):
        a, b, c = np.argwhere(left != right)[0]
        raise InvalidParameterError(f"table is not associative: (g{a} g{b}) g{c} != g{a} (g{b} g{c})")
    rows = np.arange(n)
    identities = [e for e in range(n) if np.array_equal(table[e], rows) and np.array_equal(table[:, e], rows)]
    if not identities:
        raise InvalidParameterError("table has no two-sided identity element")
    e = identities[0]
    for a in range(n):
        if not np.any((table[a] == e) & (table[:, a] == e)):
            raise InvalidParameterError(f"element g{a} has no two-sided inverse")
    return e


def load_cayley_table(source, *, name: str = "group", check: bool = True) -> AlgorithmicTask:
    """Task of a finite group given by its multiplication (Cayley) table.

    Parameters
    ----------
    source : path or array_like
        An n×n integer array with ``table[a, b] = a·b`` (0-based element indices), or a CSV file:
        either n rows of n integers, or a header row of element names followed by n rows whose
        entries are names (an optional leading row-label column equal to the header is allowed).
    name : str
        Name of the group; also its operator token.
    check : bool, default True
        Verify the group axioms (:func:`check_group_axioms`).
    """
    names: list[str] | None = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise InvalidParameterError(f"cayley table file {path} does not exist")
        with open(path, newline="") as fh:
            rows = [[cell.strip() for cell in row] for row in csv.reader(fh) if any(c.strip() for c in row)]
        if not rows:
            raise InvalidParameterError(f"cayley table file {path} is empty")
        try:
            table = np.array([[int(c) for c in row] for row in rows], dtype=np.int64)
        except ValueError:
            header = rows[0]
            body = rows[1:]
            if header and header[0] == "" or (body and len(body[0]) == len(header) + 1):
                header = [h for h in header if h != ""]
                body = [row[1:] for row in body]
            names = header
            lookup = {s: i for i, s in enumerate(names)}
            try:
                table = np.array([[lookup[c] for c in row] for row in body], dtype=np.int64)
            except KeyError as exc:
                raise InvalidParameterError(f"cayley table entry {exc.args[0]!r} is not an element name of the header") from None
    else:
        table = np.asarray(source)
        if table.size and not np.issubdtype(table.dtype, np.integer):
            if np.any(table != np.round(table)):
                raise InvalidParameterError("table entries must be integers")
            table = table.astype(np.int64)
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise InvalidParameterError(f"table must be a square n x n array, got shape {table.shape}")
    n = table.shape[0]
    if check:
        check_group_axioms(table)
    elif table.min() < 0 or table.max() >= n:
        raise InvalidParameterError(f"table entries must be element indices in [0, {n - 1}]")
    tokens = tuple(f"{name}:{s}" for s in names) if names else tuple(f"{name}:g{i}" for i in range(n))
    a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a, b = a.ravel(), b.ravel()
    return AlgorithmicTask(name, name, None, tokens, np.stack([a, b, table[a, b]], axis=1).astype(np.int64))


def dihedral_cayley_table(n: int) -> np.ndarray:
    """Cayley table of the dihedral group D_n of order 2n (Decision D.11: D₄₈, order 96).

    Element k < n is the rotation r^k, element n + k the reflection s·r^k, with s r s = r⁻¹.
    Products: r^i r^j = r^{i+j}; r^i (s r^j) = s r^{j−i}; (s r^i) r^j = s r^{i+j};
    (s r^i)(s r^j) = r^{j−i} (indices mod n).
    """
    n = check_int_at_least("n", n, 1)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    table = np.empty((2 * n, 2 * n), dtype=np.int64)
    table[:n, :n] = (i + j) % n
    table[:n, n:] = n + (j - i) % n
    table[n:, :n] = n + (i + j) % n
    table[n:, n:] = (j - i) % n
    return table


def group_task(table, name: str = "group") -> AlgorithmicTask:
    """Alias of :func:`load_cayley_table` for an in-memory table."""
    return load_cayley_table(table, name=name)


# --------------------------------------------------------------------------------------------
# Split


def train_size(n_equations: int, train_pct: float) -> int:
    """Number of training equations ``round(N · pct / 100)`` (§B.2, Python rounding)."""
    pct = float(train_pct)
    if not (0.0 < pct < 100.0):
        raise InvalidParameterError(f"train_pct must lie in (0, 100), got {train_pct!r}")
    return int(round(n_equations * (pct / 100.0)))


@dataclass(frozen=True)
class AlgorithmicSplit:
    """Fixed train/validation split of a task (§B.2).

    Attributes
    ----------
    task : AlgorithmicTask
    train_pct : float
        Training percentage in (0, 100).
    order : ndarray, shape (n_equations,)
        The shuffled equation order (``RandomState(0).permutation``).
    train, val : ndarray, shape (n, 3)
        Equations (a, b, c) of each part.
    """

    task: AlgorithmicTask
    train_pct: float
    order: np.ndarray
    train: np.ndarray
    val: np.ndarray


def split_equations(task: AlgorithmicTask, train_pct: float, *, split_seed: int = 0) -> AlgorithmicSplit:
    """Shuffle all equations with ``np.random.RandomState(split_seed)`` (0 in §B.2) and split.

    The first ``round(N·pct/100)`` shuffled equations train, the rest validate. The split does
    not depend on the model seed. ``RandomState.permutation(N)`` shuffles ``arange(N)`` with the
    same Fisher–Yates draws that ``RandomState.shuffle`` applies to Power's list of N strings.
    """
    n_train = train_size(task.n_equations, train_pct)
    if n_train < 1 or n_train >= task.n_equations:
        raise InvalidParameterError(
            f"train_pct={train_pct} leaves {n_train} of {task.n_equations} equations for training; "
            "need at least one training and one validation equation"
        )
    order = np.random.RandomState(split_seed).permutation(task.n_equations)
    eqs = task.equations[order]
    return AlgorithmicSplit(task, float(train_pct), order, eqs[:n_train], eqs[n_train:])


# --------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class Vocabulary:
    """Token strings and their ids (§B.2)."""

    tokens: tuple[str, ...]

    @classmethod
    def for_task(cls, task: AlgorithmicTask) -> "Vocabulary":
        """``<|eos|>``, ``=``, Power's 20 operator strings (sorted), numbers 0..p−1, the 120
        S5 permutations, then a custom group's own operator and element tokens (if any)."""
        p = task.modulus if task.modulus is not None else 97
        base = [EOS_TOKEN, EQ_TOKEN, *sorted(POWER_OPERATOR_STRINGS)]
        base += [str(i) for i in range(p)]
        base += ["".join(map(str, q)) for q in s5_elements()]
        extra = [t for t in (task.operator_token, *task.element_tokens) if t not in set(base)]
        return cls(tuple(base + extra))

    def __len__(self) -> int:
        return len(self.tokens)

    def index(self, token: str) -> int:
        return self.tokens.index(token)


def encode_equations(task: AlgorithmicTask, equations: np.ndarray, vocab: Vocabulary | None = None) -> np.ndarray:
    """Token ids of ``<eos> a op b = c <eos>``, shape (n, 7) (§B.2)."""
    vocab = vocab or Vocabulary.for_task(task)
    lookup = {t: i for i, t in enumerate(vocab.tokens)}
    element_ids = np.array([lookup[t] for t in task.element_tokens], dtype=np.int64)
    eqs = np.asarray(equations, dtype=np.int64)
    n = eqs.shape[0]
    out = np.empty((n, 7), dtype=np.int64)
    out[:, 0] = lookup[EOS_TOKEN]
    out[:, 1] = element_ids[eqs[:, 0]]
    out[:, 2] = lookup[task.operator_token]
    out[:, 3] = element_ids[eqs[:, 1]]
    out[:, 4] = lookup[EQ_TOKEN]
    out[:, 5] = element_ids[eqs[:, 2]]
    out[:, 6] = lookup[EOS_TOKEN]
    return out
