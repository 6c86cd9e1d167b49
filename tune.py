"""Run many `train.py` runs as Ray Tune trials: seeds of one config, or a hyperparameter sweep.

    python tune.py --config configs/repeat-previous.yaml --seeds 5
    python tune.py --config tmaze-short --search configs/search/ppo.yaml --num-samples 50
    python tune.py --resume runs/Memory-RepeatPrevious-v0__seeds5__20261203-120000
    python tune.py ... --address auto          # on a running Ray cluster

Every train.py flag applies to all trials. Each trial is an ordinary run folder inside the
experiment folder; see `python tune.py --help` and `agent/tune/cli.py`.

Exit codes: 0 done, 1 a trial failed after its restarts, 2 bad input (nothing was run),
130 interrupted (continue with --resume).
"""

from __future__ import annotations

import importlib.util
import sys

from agent.run.cli import run_script


def main(argv: list[str] | None = None) -> int:
    """`agent.tune.cli.main`, once Ray Tune and Optuna are known to be installed."""
    missing = [name for name in ("ray", "optuna") if importlib.util.find_spec(name) is None]
    if missing:
        print(
            f"error: tune.py needs {' and '.join(missing)}: pip install -e '.[tune]'",
            file=sys.stderr,
        )
        return 2
    from agent.tune.cli import main as tune_main

    return tune_main(argv)


if __name__ == "__main__":
    run_script(main)
