"""The presets in configs/: every one is a valid whole experiment, and (slow) the quick ones
reach the goal their header states when trained exactly as `train.py --config` trains them."""

import json
from pathlib import Path

import gymnasium as gym
import pytest

import envs  # noqa: F401
import evaluate as evaluate_script
import train as train_script
from agent import RecurrentPPO
from agent.run.cli import resolve_settings, train_parser
from benchmarks.presets import GOALS, JSON_FIELDS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(p.stem for p in CONFIGS.glob("*.yaml"))


def test_every_task_of_the_suite_has_a_preset_with_a_goal():
    tasks = {
        resolve_settings(train_parser().parse_args(["--config", str(CONFIGS / f"{p}.yaml")])).env_id
        for p in PRESETS
    }
    memory_ids = {k for k in gym.registry if k.startswith("Memory/")}
    assert memory_ids <= tasks
    assert set(PRESETS) <= set(GOALS)


MEASURED_WITH = {
    "bandit": {"ent_coef": 0.01},
    "taxi-destination": {"ent_coef": 0.01, "forget_bias_init": "half-chrono"},
    "minigrid-memory-s7": {"ent_coef": 0.01, "forget_bias_init": "half-chrono"},
    "minigrid-memory-s9": {"ent_coef": 0.01, "forget_bias_init": "half-chrono"},
}
"""What a preset was measured with, where not chrono and no entropy bonus."""


@pytest.mark.parametrize("name", PRESETS)
def test_preset_builds_a_valid_model(name):
    settings = resolve_settings(
        train_parser().parse_args(["--config", str(CONFIGS / f"{name}.yaml")])
    )
    assert settings.total_timesteps > 0
    model = RecurrentPPO(settings.env_id, settings.config, env_kwargs=settings.env_kwargs)
    model.close()
    # The presets were measured with chrono and without an entropy bonus (the defaults until
    # issue 16 changed them), but for those in MEASURED_WITH: a preset that no longer names what
    # it was measured with would silently train with settings it was not measured with.
    measured = {"forget_bias_init": "chrono", "ent_coef": 0.0, **MEASURED_WITH.get(name, {})}
    for key, value in measured.items():
        assert getattr(settings.config, key) == value, key


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tmaze-short", "tmaze-100", "repeat-first", "repeat-previous"])
def test_quick_preset_reaches_its_goal(name, tmp_path):
    run = tmp_path / name
    argv = ["--config", str(CONFIGS / f"{name}.yaml"), "--run-dir", str(run)]
    assert train_script.main([*argv, "--eval-freq", "0", "--no-progress"]) == 0
    out = tmp_path / "result.json"
    assert evaluate_script.main([str(run), "--episodes", "200", "--json", str(out)]) == 0
    tag, least = GOALS[name]
    assert json.loads(out.read_text())[JSON_FIELDS[tag]] >= least


@pytest.mark.slow
def test_tmaze_1000_recipe_bridges_the_gap():
    """The tmaze-1000 preset's hyperparameters, stopped once the training success over the last
    100 episodes is 0.99 (about 1-1.7M steps on three seeds), then judged on 200 fresh episodes."""
    from agent.run.evaluation import evaluate

    settings = resolve_settings(
        train_parser().parse_args(["--config", str(CONFIGS / "tmaze-1000.yaml")])
    )
    model = RecurrentPPO(settings.env_id, settings.config, env_kwargs=settings.env_kwargs)

    def until_solved(m: RecurrentPPO) -> bool:
        stats = m.successes
        return not (len(stats) >= 100 and m.logs.get("rollout/success_rate", 0.0) >= 0.99)

    model.learn(settings.total_timesteps, callback=until_solved)
    result = evaluate(model, settings.env_id, settings.env_kwargs, n_episodes=200, n_envs=32)
    model.close()
    assert result["success_rate"] >= 0.99
