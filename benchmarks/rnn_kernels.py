"""Each recurrent core alone, forward and backward over one training minibatch, side by side.

    python benchmarks/rnn_kernels.py                  # 2 sequences of 128 steps, as the defaults
    python benchmarks/rnn_kernels.py --steps 1002 --batch 1 --cells lstm gru mingru

What an update spends in the core, without the rest of a run: `RecurrentCore.outputs` (the
actor's and the critic's networks, as training calls it) on random inputs from a zero state,
then the backward pass of their sum (the inputs need no gradient, as behind the parameter-free
encoders of vector observations); the median of `--repeats` timed calls after warm-up calls,
one core after another in this process. The LSTM runs twice: as PyTorch runs it on a CPU (its
oneDNN kernel) and with oneDNN turned off (`torch.backends.mkldnn.flags(enabled=False)`), which
shows how much of the LSTM's lead over the GRU is that kernel. Use it to see why a cell trains
slower or faster end to end (`benchmarks/throughput.py --cells ...` measures whole runs).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CELLS = ("lstm", "gru", "peephole", "mingru", "ffm")
NO_ONEDNN = "lstm, oneDNN off"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmarks/rnn_kernels.py",
        description="Time each recurrent core's forward and backward over one minibatch, side "
        "by side, and the LSTM again with oneDNN off.",
    )
    p.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS), help="the cores")
    p.add_argument("--steps", type=int, default=128, help="sequence length (default: 128)")
    p.add_argument("--batch", type=int, default=2, help="sequences per call (default: 2)")
    p.add_argument("--input", type=int, default=64, help="input features (default: 64)")
    p.add_argument("--hidden", type=int, default=128, help="units per network (default: 128)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per core (default: 20)")
    return p


def time_core(core, x, state, repeats: int, warmup: int = 3) -> float:
    """Median seconds of one forward and backward of `core` over `x` from `state`."""
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        sum(out.sum() for out in core.outputs(x, state)).backward()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextlib.contextmanager
def onednn_off():
    """oneDNN turned off inside, without the warning each switch gives on a CPU build (that
    TF32 on oneDNN needs an Intel GPU)."""
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    sizes = (args.steps, args.batch, args.input, args.hidden, args.threads, args.repeats)
    if min(sizes) <= 0:
        print("error: --steps, --batch, --input, --hidden, --threads and --repeats must be "
              "positive", file=sys.stderr)  # fmt: skip
        return 2
    if "ffm" in args.cells and args.hidden % 4:
        print("error: an FFM needs --hidden a multiple of 4", file=sys.stderr)
        return 2
    import torch

    sys.path.insert(0, str(ROOT))
    from agent.networks.recurrent import RecurrentCore

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.steps, args.batch, args.input)
    cells = list(dict.fromkeys(args.cells))
    runs = [(cell, cell, contextlib.nullcontext) for cell in cells]
    if "lstm" in cells and torch.backends.mkldnn.is_available():
        runs.insert(cells.index("lstm") + 1, (NO_ONEDNN, "lstm", onednn_off))
    elif "lstm" in cells:
        print("(this torch has no oneDNN: no row without it)")
    print(f"forward and backward of the actor's and critic's cores over {args.batch} sequences "
          f"of {args.steps} steps, {args.input} inputs, {args.hidden} units, {args.threads} "
          f"thread(s), median of {args.repeats}:")  # fmt: skip
    seconds = {}
    for name, cell, flags in runs:
        core = RecurrentCore(args.input, args.hidden, rnn_type=cell, groups=2)
        with flags():
            seconds[name] = time_core(core, x, core.initial_state(args.batch), args.repeats)
    base = seconds.get("lstm")
    for name, s in seconds.items():
        ratio = f"   {s / base:.2f}x the LSTM's time" if base else ""
        print(f"  {name:<18} {s * 1e3:8.2f} ms{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
