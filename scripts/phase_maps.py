"""The DMFT phase diagram of grokking: the full maps of issue 14 and their report.

Usage (each stage writes its store in ``--out-dir`` and rebuilds the report from every store
there)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/phase_maps.py fig3e       --solver grid=log --solver error_replicas=4 \
        --solver samples=8192 --solver horizon=adaptive
    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/phase_maps.py theory8x8   --solver grid=log --solver error_replicas=4 \
        --solver samples=8192 --solver horizon=adaptive
    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/phase_maps.py alpha_kappa --solver grid=log --solver error_replicas=4 \
        --solver samples=8192 --solver horizon=adaptive
    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/phase_maps.py dim400      --solver grid=log --solver error_replicas=4 \
        --solver samples=8192 --solver horizon=adaptive
    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/phase_maps.py scaling     --solver grid=log --solver error_replicas=4 \
        --solver samples=8192 --solver horizon=adaptive
    PYTHONPATH=. python scripts/phase_maps.py report                        # = any stage with --report-only

``--solver horizon=adaptive`` solves each DMFT point only as far as its crossings
(:class:`comparisons.phase.AdaptiveHorizon`). ``--tiny`` runs every stage at a smoke-test size
(2 × 2 grids, t ≤ 10, a few hundred Monte Carlo samples) into ``runs/phase_tiny`` with its
report there, never into ``docs``.

Stages (theory.md §4.4, §4.5, §5):

* ``fig3e`` — the 4 × 4 grid of Fig. 3e (κ ∈ {0.4, 0.8, 1.6, 2.4}, ε ∈ {0.04, 0.08, 0.16, 0.28},
  alpha = P/D = 5.5, N = 4, centred, t ≤ 300, planted m(0) = ±40^(−1/2)) from the DMFT beside 4
  simulated seeds at D = 40 (``dmft figure fig3e``), with the online escape time; regenerates
  ``docs/figures/fig3e.png``; reports Spearman's rank correlation of the two maps and the largest
  difference in seed spreads.
* ``theory8x8`` — theory only, κ ∈ 0.4·{1..8}, ε ∈ 0.04·{1..8}, alpha = 5.5.
* ``alpha_kappa`` — alpha ∈ {2, 3, 5.5, 10, 20, 40, 80, ∞} × κ ∈ {0.25, …, 8} at ε = 0.16, N = 2,
  centred: where grokking disappears (lazy/rich in κ, large alpha); and the law of theory.md §4.4,
  α·(E_test − E_train) → α·gap_estimate, checked at the largest alphas.
* ``dim400`` — the 4 × 4 grid simulated at D = 400 and D = 40 (the same ≥ 4 seeds and planted
  m(0)): how much closer the DMFT map (the ``fig3e`` store) is to D = 400 than to D = 40.
* ``scaling`` — the 4 × 4 DMFT grid on a Dask ``LocalCluster`` with 1 and 2 workers (recomputed),
  and what a 32 × 32 map would take on n workers.

Runs already complete in a store are reused (a killed stage restarts where it stopped).
``--report-only`` computes nothing: every map is read back from its store (missing points show
as failed), and the summaries of the last runs are read from the stores' ``phase_summary`` records.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from comparisons.phase import map_agreement, phase_diagram, phase_from_seeds, phase_points, plot_phase
from comparisons.store import list_records, list_runs, read_record, read_run, write_record, write_run
from comparisons.sweeps import parse_value
from dmft.plotting import save_figure

REPO = Path(__file__).resolve().parents[1]
STAGES = ("fig3e", "theory8x8", "alpha_kappa", "dim400", "scaling")
SUMMARY = "phase_summary"


def planted(width: int, dim: int) -> list[float]:
    """m_i(0) = ±D^(−1/2), alternating (theory.md §0), as in the figures."""
    return [(1.0 if i % 2 == 0 else -1.0) / math.sqrt(dim) for i in range(width)]


def settings(stage: str, tiny: bool) -> dict:
    """The settings of a stage (full, or the smoke-test size)."""
    grid43 = dict(scales=[0.4, 0.8, 1.6, 2.4], epsilons=[0.04, 0.08, 0.16, 0.28])
    if stage == "fig3e":
        full = dict(**grid43, alpha=5.5, width=4, dim=40, lr=8.0, t_max=300.0, dt=0.5, seeds=4)
        small = dict(scales=[0.5, 1.0], epsilons=[0.25, 0.5], alpha=10.0, width=2, dim=20, lr=1.0, t_max=15.0, dt=0.5,
                     seeds=2)
    elif stage == "theory8x8":
        full = dict(scales=[round(0.4 * i, 10) for i in range(1, 9)],
                    epsilons=[round(0.04 * i, 10) for i in range(1, 9)], alpha=5.5, width=4, init_dim=40, t_max=300.0,
                    dt=0.5)
        small = dict(scales=[0.5, 1.0], epsilons=[0.25, 0.5], alpha=10.0, width=2, init_dim=20, t_max=15.0, dt=0.5)
    elif stage == "alpha_kappa":
        full = dict(alphas=[2.0, 3.0, 5.5, 10.0, 20.0, 40.0, 80.0, math.inf], scales=[0.25, 0.5, 1.0, 2.0, 4.0, 8.0],
                    epsilon=0.16, width=2, init_dim=40, t_max=300.0, dt=0.5, gap_alphas=[40.0, 80.0],
                    gap_t_max=40.0, gap_dt=0.5)
        small = dict(alphas=[10.0, 20.0, math.inf], scales=[0.5, 1.0], epsilon=0.25, width=2, init_dim=20,
                     t_max=15.0, dt=0.5, gap_alphas=[10.0, 20.0], gap_t_max=4.0, gap_dt=0.5)
    elif stage == "scaling":
        # eight resolved points of the 8 × 8 map (25–50 s each on one thread, similar costs so that
        # two workers can share them evenly): the scaling of the executor, not of the map's cost mix
        full = dict(scales=[0.4, 0.8], epsilons=[0.12, 0.16, 0.2, 0.24], alpha=5.5, width=4, init_dim=40,
                    t_max=300.0, dt=0.5, workers=[1, 2], target=32)
        small = dict(scales=[0.5, 1.0], epsilons=[0.25, 0.5], alpha=10.0, width=2, init_dim=20, t_max=15.0, dt=0.5,
                     workers=[1, 2], target=32)
    elif stage == "dim400":
        full = dict(**grid43, alpha=5.5, width=4, dims=[40, 400], init_dim=40, lr=8.0, t_max=300.0, seeds=4)
        small = dict(scales=[0.5, 1.0], epsilons=[0.25, 0.5], alpha=10.0, width=2, dims=[20, 40], init_dim=20,
                     lr=1.0, t_max=15.0, seeds=2)
    else:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    return small if tiny else full


def _not_stored(params):
    raise LookupError("not in the store (--report-only computes nothing)")


def _summary(store: Path) -> dict | None:
    if not store.exists() or SUMMARY not in list_records(store):
        return None
    _, attrs = read_record(store, SUMMARY)
    return json.loads(attrs["summary"]) if isinstance(attrs["summary"], str) else attrs["summary"]


def _save_summary(store: Path, summary: dict) -> None:
    write_record(store, SUMMARY, {}, attrs={"summary": json.dumps(summary, default=str)})


def _theory_map(axes, fixed, store, args, report_only, solver=None, threshold=0.1):
    """The DMFT map of a stage; with ``report_only`` only read back (``solver``: the options the
    stored solves were run with, part of their identity)."""
    runner = {"runner": _not_stored} if report_only else {}
    return phase_diagram(axes, fixed, threshold=threshold, out=store, workers=0 if report_only else args.workers,
                         scheduler=None if report_only else args.scheduler, progress=not report_only,
                         as_xarray=False, horizon=args.horizon, **runner,
                         **dict(args.solver if solver is None else solver))


def _table(result, what: str = "amount", error: str = "amount_sem") -> list[str]:
    d0, d1 = result.dims
    c0, c1 = result[d0], result[d1]
    lines = [f"| {d0} \\ {d1} | " + " | ".join(f"{v:g}" for v in c1) + " |", "|---" * (len(c1) + 1) + "|"]
    values, errors = result[what], result[error] if error else None
    for i, v0 in enumerate(c0):
        cells = []
        for j in range(len(c1)):
            if result.censored[i, j] and what == "amount":
                cells.append(("unresolved" if result.unresolved[i, j] else "censored")
                             + ("" if result.converged[i, j] else " (n.c.)"))
                continue
            value = values[i, j]
            text = f"{value:.3g}" if math.isfinite(value) else "–"
            if errors is not None and math.isfinite(errors[i, j]):
                text += f" ± {errors[i, j]:.2g}"
            if not result.converged[i, j]:
                text += " (n.c.)"
            cells.append(text)
        lines.append(f"| {v0:g} | " + " | ".join(cells) + " |")
    return lines


# --------------------------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------------------------
def stage_fig3e(args, report_only: bool) -> dict | None:
    from comparisons.figures import make_figure

    s = settings("fig3e", args.tiny)
    store = args.figures / "fig3e.h5"
    if report_only:
        return _summary(store)
    overrides = {k: s[k] for k in ("scales", "epsilons", "alpha", "width", "dim", "lr", "t_max", "dt", "seeds")}
    overrides.update(workers=args.workers, solver=dict(args.solver), horizon=args.horizon)
    report = make_figure("fig3e", out_dir=args.figures, settings=overrides)
    summary = {"stage": "fig3e", "settings": overrides, "figure": report.files[0], "seconds": report.seconds,
               "notes": list(report.notes), "numbers": report.numbers}
    _save_summary(Path(report.store), summary)
    return summary


def stage_theory8x8(args, report_only: bool) -> dict | None:
    s = settings("theory8x8", args.tiny)
    store = args.out_dir / "phase_theory8x8.h5"
    if report_only and not store.exists():
        return None
    fixed = dict(alpha=s["alpha"], width=s["width"], center=True, init_overlap=planted(s["width"], s["init_dim"]),
                 t_max=s["t_max"], dt=s["dt"])
    start = time.perf_counter()
    stored = _summary(store) or {}
    result = _theory_map({"scale": s["scales"], "epsilon": s["epsilons"]}, fixed, store, args, report_only,
                         solver=stored.get("solver") if report_only else None)
    figure = args.figures / "phase_theory8x8.png"
    save_figure(plot_phase(result, title=f"DMFT amount of grokking, alpha=P/D={s['alpha']:g}, N={s['width']}, "
                                         f"centred, t ≤ {s['t_max']:g}"), figure)
    summary = stored
    if not report_only:
        summary = {"stage": "theory8x8", "settings": s, "solver": args.solver, "seconds": time.perf_counter() - start,
                   "workers": args.workers, "scheduler": args.scheduler}
        _save_summary(store, summary)
    summary.update(figure=str(figure), table=_table(result), points=phase_points(result))
    return summary


def _gap_check(s, store: Path, report_only: bool) -> list[dict]:
    """α·(E_test − E_train) of the DMFT against α·gap_estimate (theory.md §4.4) at large α."""
    from dmft.asymptotics import gap_estimate
    from dmft.parameters import ModelParameters

    rows = []
    names = set(list_runs(store)) if store.exists() else set()
    t_check = np.arange(0.0, s["gap_t_max"] + 1e-9, s["gap_dt"])
    for kappa in s["scales"]:
        params = ModelParameters(alpha=max(s["gap_alphas"]), epsilon=s["epsilon"], scale=kappa, width=s["width"],
                                 init_overlap=planted(s["width"], s["init_dim"]), center=True)
        estimate = None
        for alpha in s["gap_alphas"]:
            name = next((n for n in names if n.startswith(f"phase__scale={kappa:g}__epsilon={s['epsilon']:g}__"
                                                          f"alpha={alpha:g}__")), None)
            if name is None:
                continue
            if estimate is None:
                estimate = max(s["gap_alphas"]) * gap_estimate(params, t_check)   # α·gap, independent of α
            run = read_run(store, name)
            gap = alpha * np.interp(t_check, run.t, run.test_loss - run.train_loss)
            scale_of = float(np.max(np.abs(estimate))) or 1.0
            rows.append({"scale": kappa, "alpha": alpha, "sup_alpha_gap_dmft": float(np.max(np.abs(gap))),
                         "sup_alpha_gap_estimate": scale_of,
                         "relative_sup_difference": float(np.max(np.abs(gap - estimate)) / scale_of),
                         "t_max_checked": float(t_check[-1])})
    return rows


def stage_alpha_kappa(args, report_only: bool) -> dict | None:
    s = settings("alpha_kappa", args.tiny)
    store = args.out_dir / "phase_alpha_kappa.h5"
    if report_only and not store.exists():
        return None
    fixed = dict(epsilon=s["epsilon"], width=s["width"], center=True, init_overlap=planted(s["width"], s["init_dim"]),
                 t_max=s["t_max"], dt=s["dt"])
    start = time.perf_counter()
    stored = _summary(store) or {}
    result = _theory_map({"scale": s["scales"], "alpha": s["alphas"]}, fixed, store, args, report_only,
                         solver=stored.get("solver") if report_only else None)
    figure = args.figures / "phase_alpha_kappa.png"
    save_figure(plot_phase(result, title=f"DMFT amount of grokking over κ and alpha=P/D, ε={s['epsilon']:g}, "
                                         f"N={s['width']}, centred, t ≤ {s['t_max']:g}"), figure)
    summary = stored
    if not report_only:
        summary = {"stage": "alpha_kappa", "settings": s, "solver": args.solver, "seconds": time.perf_counter() - start,
                   "gap_law": _gap_check(s, store, report_only)}
        _save_summary(store, summary)
    summary.update(figure=str(figure), table=_table(result), points=phase_points(result))
    return summary


def stage_dim400(args, report_only: bool) -> dict | None:
    s = settings("dim400", args.tiny)
    store = args.out_dir / "phase_dim400.h5"
    if report_only:
        return _summary(store)
    from empirical import train_committee

    m0 = planted(s["width"], s["init_dim"])
    axes = {"scale": s["scales"], "epsilon": s["epsilons"]}
    start = time.perf_counter()
    done = set(list_runs(store)) if store.exists() else set()
    maps = {}
    for dim in s["dims"]:
        grid = []
        for kappa in s["scales"]:
            row = []
            for eps in s["epsilons"]:
                cell = []
                for seed in range(s["seeds"]):
                    name = (f"sim_D{dim}_N{s['width']}_a{s['alpha']:g}_lr{s['lr']:g}_tmax{s['t_max']:g}_"
                            f"scale{kappa:g}_eps{eps:g}_seed{seed}")
                    if name in done:
                        curves = read_run(store, name)
                    else:
                        curves = train_committee(alpha=s["alpha"], dim=dim, width=s["width"], scale=kappa,
                                                 epsilon=eps, t_max=s["t_max"], lr=s["lr"], center=True,
                                                 init_overlap=m0, seed=seed, record_points=150, device="cpu")
                        write_run(store, name, curves)
                    cell.append(curves)
                row.append(cell)
            grid.append(row)
        maps[dim] = phase_from_seeds(axes, grid, 0.1, as_xarray=False)
    # the DMFT map of the same grid: the fig3e stage's store (computed there if missing)
    theory_store = args.figures / "fig3e.h5"
    fixed = dict(alpha=s["alpha"], width=s["width"], center=True, init_overlap=m0, t_max=s["t_max"],
                 dt=settings("fig3e", args.tiny)["dt"])
    from comparisons.figures import fig3e_settings

    # the options the fig3e stage solved with (its long-horizon defaults under --solver), so that
    # its stored solves are found
    solver = {**fig3e_settings(False)["solver"], **args.solver}
    theory = _theory_map(axes, fixed, theory_store, args, report_only=False, solver=solver)
    agreement = {f"D={dim}": map_agreement(theory, maps[dim]) for dim in s["dims"]}
    for dim in s["dims"]:
        both = np.isfinite(theory.amount) & np.isfinite(maps[dim].amount)
        agreement[f"D={dim}"]["mean_abs_diff"] = float(np.mean(np.abs(theory.amount - maps[dim].amount)[both])) \
            if both.any() else None
    plt = __import__("comparisons.overlay", fromlist=["pyplot"]).pyplot()
    fig, axs = plt.subplots(1, len(s["dims"]) + 1, figsize=(5.2 * (len(s["dims"]) + 1), 4.6), constrained_layout=True)
    finite = [m.amount[np.isfinite(m.amount)] for m in [theory, *maps.values()]]
    vmax = max([float(f.max()) for f in finite if f.size] or [1.0])
    for ax, dim in zip(axs, s["dims"]):
        plot_phase(maps[dim], ax, title=f"simulation D={dim}, {s['seeds']} seeds (sd = seed spread)", vmax=vmax,
                   error="amount_sd", error_label="sd")
    plot_phase(theory, axs[-1], title="DMFT (D → ∞)", vmax=vmax)
    figure = args.figures / "phase_dim400.png"
    save_figure(fig, figure)
    summary = {"stage": "dim400", "settings": s, "seconds": time.perf_counter() - start, "figure": str(figure),
               "agreement": agreement,
               "tables": {f"D={dim}": _table(maps[dim], error="amount_sd") for dim in s["dims"]},
               "theory_table": _table(theory)}
    _save_summary(store, summary)
    return summary


def stage_scaling(args, report_only: bool) -> dict | None:
    """Wall time of one grid on a Dask LocalCluster with 1 and 2 workers (recomputed, not resumed),
    and the extrapolation to a ``target`` × ``target`` map on n workers."""
    s = settings("scaling", args.tiny)
    store = args.out_dir / "phase_scaling.h5"
    if report_only:
        return _summary(store)
    from distributed import LocalCluster

    fixed = dict(alpha=s["alpha"], width=s["width"], center=True, init_overlap=planted(s["width"], s["init_dim"]),
                 t_max=s["t_max"], dt=s["dt"])
    axes = {"scale": s["scales"], "epsilon": s["epsilons"]}
    points = len(s["scales"]) * len(s["epsilons"])
    timings, maps = {}, {}
    for n in s["workers"]:
        # one Numba/BLAS thread per worker process (the cluster gives the parallelism), as the local pool
        single = {var: "1" for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                          env=single) as cluster:
            start = time.perf_counter()
            maps[n] = phase_diagram(axes, fixed, out=args.out_dir / f"phase_scaling_{n}.h5",
                                    scheduler=cluster.scheduler_address, resume=False, as_xarray=False,
                                    horizon=args.horizon, **args.solver)
            timings[n] = time.perf_counter() - start
    per_point = timings[min(timings)] * min(timings) / points   # worker-seconds per point
    target = s["target"] ** 2
    summary = {"stage": "scaling", "settings": s, "solver": args.solver, "points": points,
               "seconds": {str(k): v for k, v in timings.items()},
               "speedup": timings[min(timings)] / timings[max(timings)],
               "worker_seconds_per_point": per_point,
               # the same seeds on any number of workers: the maps must agree to the last bit
               "max_amount_difference": float(np.nanmax(np.abs(maps[min(maps)].amount - maps[max(maps)].amount))),
               "failed": {str(k): len(json.loads(m.attrs["failed"])) for k, m in maps.items()},
               "estimate_hours_target_map": {str(n): per_point * target / n / 3600 for n in (1, 2, 16, 64, 256)}}
    _save_summary(store, summary)
    return summary


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def _fmt(value) -> str:
    """Numbers of the report with 3 significant digits (None as "–")."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def _rel(path: str, report: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(report.parent.resolve()))
    except ValueError:
        import os

        return os.path.relpath(Path(path).resolve(), report.parent.resolve())


def write_report(summaries: dict, args) -> Path:
    report = args.report
    lines = ["# The phase diagram of grokking from the DMFT (issue 14)", "",
             "Generated by `scripts/phase_maps.py`" + (" at the smoke-test size (`--tiny`): the numbers below "
                                                       "only show that the pipeline runs." if args.tiny else "."),
             "Amount of grokking = t_test − t_train, each the first time the loss falls below 0.1 × its value at "
             "t = 0 (linear interpolation; theory.md §5); *censored* = a threshold not reached by t_max (never a "
             "number); *n.c.* = the solve did not converge; ± = the DMFT's Monte Carlo standard error by the delta "
             "method where the solver gives one.", ""]
    commands = {s: f"`OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/phase_maps.py {s} --solver grid=log "
                   f"--solver error_replicas=4 --solver samples=8192 --solver horizon=adaptive`" for s in STAGES}
    if args.tiny:
        commands = {s: f"`PYTHONPATH=. python scripts/phase_maps.py {s} --tiny`" for s in STAGES}
    missing = [s for s in STAGES if s not in summaries]
    if missing:
        lines += [f"Stages not run yet: {', '.join(missing)} (each listed below with its command). The full maps "
                  "need the long-horizon DMFT solver (log time grid to t = 300, Monte Carlo error replicas) and "
                  "hours of CPU; the code has run at the smoke-test size (`--tiny`).", ""]
    f3 = summaries.get("fig3e")
    lines += ["## Fig. 3e: DMFT beside simulation", "", f"Command: {commands['fig3e']}", ""]
    if f3:
        n = f3["numbers"]
        lines += [f"![fig3e]({_rel(f3['figure'], report)})", "",
                  f"Settings: `{json.dumps(f3['settings'])}`; {f3['seconds']:.0f} s.", ""]
        agreement = n.get("agreement")
        if agreement:
            lines += [f"* Spearman rank correlation DMFT vs simulation: {_fmt(agreement['spearman'])}",
                      f"* largest |DMFT − simulation mean| in seed spreads: {_fmt(agreement['max_diff_in_sd'])} "
                      f"at {_fmt(agreement['at'])} ({agreement['cells']} uncensored cells; largest absolute "
                      f"difference {_fmt(agreement['max_abs_diff'])})", ""]
        lines += [f"* note: {note}" for note in f3.get("notes", [])] + [""]
    else:
        lines += ["Not run yet (command above).", ""]
    t8 = summaries.get("theory8x8")
    lines += ["## Theory-only (κ, ε) map (full run: 8 × 8 at alpha = 5.5)", "",
              f"Command: {commands['theory8x8']}", ""]
    if t8:
        lines += [f"![theory8x8]({_rel(t8['figure'], report)})", "", *t8["table"], "",
                  f"{t8.get('seconds', float('nan')):.0f} s with workers={t8.get('workers')}, "
                  f"scheduler={t8.get('scheduler')}; solver options `{json.dumps(t8.get('solver', {}))}`.", ""]
    else:
        lines += ["Not run yet (command above).", ""]
    ak = summaries.get("alpha_kappa")
    lines += ["## Where grokking disappears: (alpha, κ) at fixed ε", "", f"Command: {commands['alpha_kappa']}", ""]
    if ak:
        lines += [f"![alpha_kappa]({_rel(ak['figure'], report)})", "", *ak["table"], "",
                  "α·gap law of theory.md §4.4: α·(E_test − E_train)(t) of the DMFT against α·gap_estimate(t) "
                  "(independent of α); the relative sup difference should fall like 1/α.", "",
                  "| κ | alpha | sup α·gap DMFT | sup α·gap estimate | relative sup difference | t ≤ |",
                  "|---|---|---|---|---|---|"]
        for row in ak.get("gap_law", []):
            lines.append(f"| {row['scale']:g} | {row['alpha']:g} | {row['sup_alpha_gap_dmft']:.3g} | "
                         f"{row['sup_alpha_gap_estimate']:.3g} | {row['relative_sup_difference']:.2g} | "
                         f"{row['t_max_checked']:g} |")
        lines.append("")
    else:
        lines += ["Not run yet (command above).", ""]
    d4 = summaries.get("dim400")
    lines += ["## Closer to the limit: simulations at large D against the paper's D = 40", "",
              f"Command: {commands['dim400']}", ""]
    if d4:
        lines += [f"![dim400]({_rel(d4['figure'], report)})", "", "| | Spearman | max diff / seed sd | mean abs diff |",
                  "|---|---|---|---|"]
        for key, a in d4["agreement"].items():
            lines.append(f"| DMFT vs {key} | {_fmt(a['spearman'])} | {_fmt(a['max_diff_in_sd'])} | "
                         f"{_fmt(a['mean_abs_diff'])} |")
        lines.append("")
        for key, table in d4["tables"].items():
            lines += [f"Simulation {key} (mean ± seed sd):", "", *table, ""]
        lines += ["DMFT:", "", *d4["theory_table"], ""]
    else:
        lines += ["Not run yet (command above).", ""]
    sc = summaries.get("scaling")
    lines += ["## Scaling on a Dask LocalCluster", "", f"Command: {commands['scaling']}", ""]
    if sc:
        t = sc["settings"]["target"]
        lines += [f"{sc['points']} points: " + ", ".join(f"{k} worker(s) {v:.1f} s" for k, v in sc["seconds"].items())
                  + f"; speed-up {sc['speedup']:.2f}; {sc['worker_seconds_per_point']:.1f} worker-seconds per point.",
                  "", f"A {t} × {t} map at these settings would take (hours, perfect scaling): "
                  + ", ".join(f"{n} workers {_fmt(h)}" for n, h in sc["estimate_hours_target_map"].items()) + ".", ""]
    else:
        lines += ["Not run yet (command above).", ""]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(lines))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=[*STAGES, "report"])
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes, into runs/phase_tiny")
    parser.add_argument("--report-only", action="store_true", help="compute nothing; rebuild the report")
    parser.add_argument("--out-dir", type=Path, default=None, help="stores [runs/ or runs/phase_tiny/]")
    parser.add_argument("--figures", type=Path, default=None, help="pictures [docs/figures or the out-dir]")
    parser.add_argument("--report", type=Path, default=None, help="report [docs/results/phase.md or out-dir]")
    parser.add_argument("--workers", type=int, default=None, help="local pool (0: in this process)")
    parser.add_argument("--scheduler", type=str, default=None, help="Dask scheduler address")
    parser.add_argument("--solver", action="append", default=[],
                        help="dmft.solve option NAME=VALUE (repeat); horizon=adaptive|full goes to phase_diagram")
    args = parser.parse_args(argv)
    solver = {}
    for text in args.solver:
        key, _, value = text.partition("=")
        solver[key.strip()] = parse_value(value)
    # horizon=full|adaptive is an option of phase_diagram, not of dmft.solve (see its docstring)
    args.horizon = str(solver.pop("horizon", "full"))
    args.solver = solver
    if args.tiny:
        args.solver = {"samples": 512, "max_iter": 15, "tol": 1e-3, **args.solver}
    args.out_dir = args.out_dir or REPO / ("runs/phase_tiny" if args.tiny else "runs")
    args.figures = args.figures or (args.out_dir if args.tiny else REPO / "docs" / "figures")
    args.report = args.report or (args.out_dir / "phase.md" if args.tiny else REPO / "docs" / "results" / "phase.md")
    for path in (args.out_dir, args.figures):
        path.mkdir(parents=True, exist_ok=True)
    stages = {"fig3e": stage_fig3e, "theory8x8": stage_theory8x8, "alpha_kappa": stage_alpha_kappa,
              "dim400": stage_dim400, "scaling": stage_scaling}
    summaries = {}
    for name, run in stages.items():
        compute = name == args.stage and not args.report_only
        summary = run(args, report_only=not compute)
        if summary is not None:
            summaries[name] = summary
    path = write_report(summaries, args)
    print(f"report: {path}")
    if args.stage in summaries:
        print(json.dumps({k: v for k, v in summaries[args.stage].items()
                          if k in ("seconds", "agreement", "gap_law", "figure")}, default=str, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
