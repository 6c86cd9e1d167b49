"""benchmarks/vector_env_speed.py: the slow env takes kwargs and wrappers as train.py does."""

import re
import sys

import pytest

from benchmarks import vector_env_speed


def test_the_slow_env_is_made_with_its_kwargs_and_wrapped(monkeypatch, capsys):
    argv = ["vector_env_speed.py", "--steps", "5", "--repeats", "1", "--num-envs", "2",
            "--slow-steps", "3", "--slow-num-envs", "2", "--step-cost-ms", "0",
            "--slow-env-kwargs", "sutton_barto_reward=True",
            "--slow-wrapper", "benchmarks.vector_env_speed:FixedStepCost", "cost_s=0.003"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    vector_env_speed.main()
    out = capsys.readouterr().out
    assert "CartPole-v1 sutton_barto_reward=True benchmarks.vector_env_speed:FixedStepCost" in out
    step_us = float(re.search(r"one step ([\d,]+) us", out).group(1).replace(",", ""))
    assert step_us >= 3000  # the wrapper's 3 ms of CPU in every step
    sync = float(re.findall(r"SyncVectorEnv +: +([\d,]+) steps/s", out)[-1].replace(",", ""))
    assert sync < 1000  # the vector envs' copies too: at most 2 / 3 ms


def test_an_unknown_kwarg_of_the_slow_env_is_refused(monkeypatch):
    argv = ["vector_env_speed.py", "--steps", "5", "--repeats", "1", "--num-envs", "2",
            "--slow-env-kwargs", "no_such_setting=1"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(TypeError, match="no_such_setting"):
        vector_env_speed.main()
