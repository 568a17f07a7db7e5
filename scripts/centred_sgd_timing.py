"""Time the online-SGD ODE of a centred tanh student (erf teacher), whose SGD term is a sum of
pairwise 4-d Gaussian integrals (K = 2N + M = 6 fields; theory.md §10.5, "The joint rule").

``new`` is the package as it is: distinct index sets only, flat axes of coinciding fields with one
node. ``old`` swaps in the sum over all N²K² ordered integrals with every axis resolved (the
rule up to session 24), so the two can be timed side by side in one session:

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/centred_sgd_timing.py new 1 &
    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/centred_sgd_timing.py old 1 &

Prints one JSON line: seconds, and the test loss at t_max/4, t_max/2 and t_max.
"""
import json
import sys
import time

import numpy as np

import dmft.activations as activations
import dmft.committee_online as committee_online
from dmft.committee_online import CommitteeModel, _sub, solve_committee_online


def every_ordered_integral(Omega, model):
    """Σ_kl s_k s_l I4(i, j, k, l) over all N²K² ordered index sets (the rule up to session 24)."""
    N, phi, s = model.width, model.activation, model.signs
    i = np.arange(N)[:, None, None, None]
    j = np.arange(N)[None, :, None, None]
    out = np.zeros((N, N))
    for kidx, kact in model.groups:
        for lidx, lact in model.groups:
            C = _sub(Omega, i, j, kidx[None, None, :, None], lidx[None, None, None, :])
            out += np.einsum("ijkl,k,l->ij", activations.i4(phi, phi, kact, lact, C), s[kidx], s[lidx])
    return out


def main():
    which, t_max = sys.argv[1], float(sys.argv[2])
    if which == "old":
        committee_online._pairwise_sgd_second_moment = every_ordered_integral
        activations._FLAT_AXIS = -1.0           # no axis is flat, not even an exactly zero one
    elif which != "new":
        raise SystemExit("usage: centred_sgd_timing.py {new,old} T_MAX")
    model = CommitteeModel(activation="tanh", teacher_activation="erf", scale=2, width=2, target="committee",
                           teacher_width=2, teacher_scale=4, init_overlap=np.diag([0.1, -0.1]), lr=0.5, center=True)
    t = np.linspace(0, t_max, int(round(t_max * 10)) + 1)
    start = time.perf_counter()
    curves = solve_committee_online(model, t, rtol=1e-9, atol=1e-11)
    seconds = time.perf_counter() - start
    picks = (len(t) // 4, len(t) // 2, len(t) - 1)
    print(json.dumps(dict(rule=which, t_max=t_max, seconds=round(seconds, 1),
                          t=[float(t[k]) for k in picks], test_loss=[float(curves.test_loss[k]) for k in picks])))


if __name__ == "__main__":
    main()
