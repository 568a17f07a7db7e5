"""Algorithmic data sets (seed_systems.md §B.2–B.3): operator tables, groups, split rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from empirical.neural.tasks import (
    OPERATORS, Vocabulary, canonical_operator, check_group_axioms, compose_permutations, dihedral_cayley_table,
    encode_equations, invert_permutation, load_cayley_table, make_task, s5_elements, split_equations, train_size,
)

# Hand-computed entries at p = 7 for (x, y) = (3, 5) and (3, 4); 5⁻¹ = 3 mod 7 (5·3 = 15 = 2·7 + 1).
HAND = {
    "+": {(3, 5): 1, (6, 6): 5},
    "-": {(3, 5): 5, (2, 5): 4},
    "*": {(3, 5): 1, (6, 6): 1},
    "/": {(3, 5): 2, (6, 3): 2},                     # 6·3⁻¹ = 6·5 = 30 = 2 mod 7
    "x**2+y**2": {(3, 5): 6},                         # 9 + 25 = 34 = 6
    "x**2+y**2+x*y": {(3, 5): 0},                     # 34 + 15 = 49 = 0
    "x**2+y**2+x*y+x": {(3, 5): 3},
    "x**3+x*y": {(3, 5): 0},                          # 27 + 15 = 42 = 0
    "x**3+x*y**2+y": {(3, 5): 2},                     # 27 + 75 + 5 = 107 = 2
    "mix1": {(3, 5): 2, (3, 4): 6, (3, 0): 3},        # y odd: x/y; y even: x − y
    "+*": {(3, 5): 1, (2, 5): 0},                     # x odd: x·y; x even: x + y
    "+-": {(3, 5): 5, (2, 5): 0},
}


@pytest.mark.parametrize("operator", sorted(HAND))
def test_modular_tables_match_hand_computed_entries(operator):
    table = make_task(operator, 7).table()
    for (x, y), c in HAND[operator].items():
        assert table[x, y] == c, (operator, x, y)


def _independent_rule(op, x, y, p):
    """Plain-Python rules with pow() inverses, written independently of the module."""
    if op == "/":
        return None if y == 0 else x * pow(y, p - 2, p) % p
    if op == "mix1":
        return x * pow(y, p - 2, p) % p if y % 2 == 1 else (x - y) % p
    if op in ("+*", "+-"):
        return (x + y) % p if x % 2 == 0 else ((x * y) % p if op == "+*" else (x - y) % p)
    expr = {"+": x + y, "-": x - y, "*": x * y, "x**2+y**2": x**2 + y**2, "x**2+y**2+x*y": x**2 + y**2 + x * y,
            "x**2+y**2+x*y+x": x**2 + y**2 + x * y + x, "x**3+x*y": x**3 + x * y,
            "x**3+x*y**2+y": x**3 + x * y**2 + y}[op]
    return expr % p


@pytest.mark.parametrize("operator", sorted(HAND))
def test_modular_tables_at_p97_match_independent_rule(operator):
    p = 97
    task = make_task(operator, p)
    assert task.n_equations == (p * (p - 1) if operator == "/" else p * p)
    for a, b, c in task.equations:
        if operator == "/":
            # Power enumerates (b·c mod p) / b = c: check the equation holds.
            assert (b * c) % p == a and _independent_rule("/", int(a), int(b), p) == c
        else:
            assert c == _independent_rule(operator, int(a), int(b), p)


def test_power_operator_strings_are_aliases():
    assert canonical_operator("x**2+y**2_mod_97") == "x**2+y**2"
    assert canonical_operator("(x._value//y)if(y._value%2==1)else(x-y)_mod_97") == "mix1"
    with pytest.raises(ValueError, match="operator"):
        canonical_operator("sort")
    with pytest.raises(ValueError, match="modulus must be a prime"):
        make_task("/", 8)
    with pytest.raises(ValueError, match="modulus"):
        make_task("+", 1)


def test_s5_tables_against_hand_entries_and_sympy():
    perms = s5_elements()
    index = {tuple(p): i for i, p in enumerate(perms)}
    a, b = (1, 2, 0, 3, 4), (0, 2, 1, 3, 4)
    s5 = make_task("s5").table()
    # c = b[a]: (b[1], b[2], b[0], b[3], b[4]) = (2, 1, 0, 3, 4), computed by hand.
    assert tuple(perms[s5[index[a], index[b]]]) == (2, 1, 0, 3, 4)
    sympy = pytest.importorskip("sympy.combinatorics")
    conj, aba = make_task("s5conj").table(), make_task("s5aba").table()
    rng = np.random.default_rng(0)
    for i, j in rng.integers(0, 120, size=(200, 2)):
        pa, pb = sympy.Permutation(list(perms[i])), sympy.Permutation(list(perms[j]))
        assert tuple(perms[conj[i, j]]) == tuple((pa * pb * ~pa).array_form)
        assert tuple(perms[aba[i, j]]) == tuple((pa * pb * pa).array_form)
        assert tuple(perms[s5[i, j]]) == tuple((pa * pb).array_form)


def test_s5_composition_is_a_group():
    table = make_task("s5").table()
    identity = check_group_axioms(table)  # associativity over all 120³ triples, identity, inverses
    assert tuple(s5_elements()[identity]) == (0, 1, 2, 3, 4)
    perms = s5_elements()
    inv = invert_permutation(perms)
    assert np.array_equal(compose_permutations(perms, inv), np.broadcast_to(np.arange(5), perms.shape))
    # conjugation by a fixes the identity and aba with b = e is a².
    conj, aba = make_task("s5conj").table(), make_task("s5aba").table()
    assert np.all(conj[:, identity] == identity)
    assert np.array_equal(aba[:, identity], table[np.arange(120), np.arange(120)])


def test_group_axiom_checker_rejects_non_groups():
    with pytest.raises(ValueError, match="associative"):
        check_group_axioms(make_task("-", 5).table())
    with pytest.raises(ValueError, match="closure"):
        check_group_axioms(np.array([[0, 2], [1, 0]]))
    with pytest.raises(ValueError, match="identity"):
        check_group_axioms(np.array([[1, 1], [1, 1]]))


def test_cayley_loader_dihedral_and_csv_round_trip(tmp_path):
    n = 6
    table = dihedral_cayley_table(n)
    assert check_group_axioms(table) == 0
    assert not np.array_equal(table, table.T)  # D_n is non-abelian for n ≥ 3
    # s r s = r^-1: element n is s, element 1 is r, element n-1 is r^-1.
    assert table[table[n, 1], n] == n - 1
    numeric = tmp_path / "d6.csv"
    np.savetxt(numeric, table, fmt="%d", delimiter=",")
    task = load_cayley_table(numeric, name="D6")
    assert task.n_equations == (2 * n) ** 2 and np.array_equal(task.table(), table)
    names = [f"e{i}" for i in range(2 * n)]
    named = tmp_path / "d6_named.csv"
    with open(named, "w") as fh:
        fh.write(",".join([""] + names) + "\n")
        for i in range(2 * n):
            fh.write(",".join([names[i]] + [names[k] for k in table[i]]) + "\n")
    assert np.array_equal(load_cayley_table(named, name="D6").table(), table)
    # Z_p from its + table reproduces make_task("+", p).
    zp = load_cayley_table(make_task("+", 11).table(), name="Z11")
    assert np.array_equal(zp.equations, make_task("+", 11).equations)
    with pytest.raises(ValueError, match="does not exist"):
        load_cayley_table(tmp_path / "missing.csv")


def test_split_rule_is_fixed_and_matches_power_list_shuffle():
    task = make_task("+", 97)
    split = split_equations(task, 50)
    assert split.train.shape[0] == 4704 == train_size(9409, 50)  # round(4704.5) = 4704 (Python rounding)
    again = split_equations(task, 50)
    assert np.array_equal(split.train, again.train) and np.array_equal(split.val, again.val)
    # Independent path: Power shuffles a Python list of equation strings with RandomState(0).
    strings = [f"{a} + {b} = {c}" for a, b, c in task.equations]
    np.random.RandomState(0).shuffle(strings)
    assert strings[:5] == [f"{a} + {b} = {c}" for a, b, c in split.train[:5]]
    assert strings[4704] == "{} + {} = {}".format(*split.val[0])
    rows = {tuple(r) for r in np.vstack([split.train, split.val])}
    assert len(rows) == 9409
    with pytest.raises(ValueError, match="train_pct"):
        split_equations(task, 0)


def test_vocabulary_and_encoding():
    task = make_task("/", 97)
    vocab = Vocabulary.for_task(task)
    assert len(vocab) == 239  # Power's vocabulary: 2 + 20 operators + 97 numbers + 120 permutations
    tokens = encode_equations(task, task.equations[:3], vocab)
    decoded = [[vocab.tokens[i] for i in row] for row in tokens]
    for row, (a, b, c) in zip(decoded, task.equations[:3]):
        assert row == ["<|eos|>", str(a), "/", str(b), "=", str(c), "<|eos|>"]
    s5 = make_task("s5")
    assert len(Vocabulary.for_task(s5)) == 239
    group = load_cayley_table(dihedral_cayley_table(3), name="D3")
    assert len(Vocabulary.for_task(group)) == 239 + 1 + 6


def test_every_operator_builds():
    for op in OPERATORS:
        task = make_task(op, 11)
        assert task.table().min() >= (-1 if op == "/" else 0)
        assert set(itertools.chain(task.equations[:, 2])) <= set(range(task.n_elements))
