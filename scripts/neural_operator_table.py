"""One table of the Power-transformer runs over operators (seed_systems.md §B.3, §C.6) at CPU size.

Usage (after training each operator with ``scripts/neural_transformer.py``)::

    for op in "- minus" "* times" "/ divide" "x**2+y**2 x2y2"; do set -- $op
      OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/neural_transformer.py --operator "$1" --modulus 23 \\
          --train-pct 80 --d-model 32 --weight-decay 1.0 --steps 6000 --seed 0 --tag neural_transformer_op_$2
    done
    PYTHONPATH=. python scripts/neural_operator_table.py

Reads ``runs/neural_transformer_op_<name>.h5`` (and the ``+`` and x³+xy / mix1 runs when present)
and writes docs/results/neural_operators.md with the steps to 99 % train and validation accuracy,
their ratio and the final accuracies, computed by :func:`comparisons.neural_plots.grokking_summary`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comparisons.neural_plots import grokking_summary  # noqa: E402
from comparisons.store import read_history  # noqa: E402

RUNS = [("+", "neural_transformer"), ("−", "neural_transformer_op_minus"), ("×", "neural_transformer_op_times"),
        ("÷", "neural_transformer_op_divide"), ("x²+y²", "neural_transformer_op_x2y2"),
        ("x³+xy", "neural_transformer_cube1"), ("mix1", "neural_transformer_mix1")]


def main() -> None:
    lines = ["# Power transformer over operators (§B.3, §C.6), CPU size", "",
             "Each row is one run of `scripts/neural_transformer.py` (its own report: "
             "`docs/results/<tag>.md`); the table is rebuilt by `scripts/neural_operator_table.py` from the stored "
             "runs. No GPU was available to this task: p = 23 instead of 97; weight decay 1 is Decision D.12's "
             "fast proxy for the thesis regime; seed 0.", "",
             "| operator | run | train % | weight decay | d_model | steps | steps to 99 % train | steps to 99 % validation | ratio | "
             "final train / validation acc |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, tag in RUNS:
        path = ROOT / "runs" / f"{tag}.h5"
        if not path.exists():
            continue
        history = read_history(path, "run")
        acc = grokking_summary(history)["accuracy"]["0.99"]
        par = history.parameters
        lines.append(f"| {label} | `{tag}` | {par['train_pct']:g} | {par['weight_decay']:g} | {par['d_model']} | {int(history.step[-1])} | "
                     f"{acc['t_train']:g} | {acc['t_val']:g} | {acc['ratio']:.3g} | "
                     f"{100 * history.train_accuracy[-1]:.1f} % / {100 * history.val_accuracy[-1]:.1f} % |")
    out = ROOT / "docs" / "results" / "neural_operators.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
