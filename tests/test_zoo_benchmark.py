"""benchmarks/zoo.py and benchmarks/zoo_envs.py: the zoo's velocity-masked envs hide exactly the
velocities, both sides read each entry as the zoo writes it, our return at B inside a full run is
that of a B-step run, and the table says what the results file holds."""

import argparse
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from benchmarks import jobs, zoo, zoo_envs
from tests.conftest import require

VELOCITIES = {
    "CartPoleNoVel-v1": ("CartPole-v1", {}, [1, 3]),  # cart velocity, pole angular velocity
    "MountainCarNoVel-v0": ("MountainCar-v0", {}, [1]),  # car velocity
    "MountainCarContinuousNoVel-v0": ("MountainCarContinuous-v0", {}, [1]),
    "PendulumNoVel-v1": ("Pendulum-v1", {}, [2]),  # angular velocity
    # x velocity, y velocity, angular velocity
    "LunarLanderNoVel-v2": ("LunarLander-v3", {}, [2, 3, 5]),
    "LunarLanderContinuousNoVel-v2": ("LunarLander-v3", {"continuous": True}, [2, 3, 5]),
}
"""Each zoo id: the Gymnasium env it masks, and its velocity entries, read from Gymnasium's
docs (rl_zoo3's `MaskVelocityWrapper.velocity_indices`)."""


def test_every_zoo_id_is_registered_and_checked_here():
    assert set(zoo_envs.ZOO_IDS) == set(VELOCITIES)
    assert {zoo_envs.VELOCITY_INDICES[inner] for inner, _ in zoo_envs.ZOO_IDS.values()} == {
        tuple(indices) for _, _, indices in VELOCITIES.values()
    }


def needs_box2d(zoo_id: str) -> None:
    if zoo_id.startswith("LunarLander"):
        require("Box2D")


@pytest.mark.parametrize("zoo_id", list(VELOCITIES))
def test_the_mask_zeroes_exactly_the_velocities(zoo_id):
    needs_box2d(zoo_id)
    env_id, kwargs, velocities = VELOCITIES[zoo_id]
    masked = gym.make(f"benchmarks.zoo_envs:{zoo_id}")
    full = gym.make(env_id, **kwargs)
    assert masked.observation_space == full.observation_space
    others = [i for i in range(full.observation_space.shape[0]) if i not in velocities]
    seen, moving = masked.reset(seed=3)[0], full.reset(seed=3)[0]
    masked.action_space.seed(3)
    nonzero = 0
    for step in range(30):
        assert np.all(seen[velocities] == 0)
        np.testing.assert_array_equal(seen[others], moving[others])
        nonzero += np.any(moving[velocities] != 0)
        action = masked.action_space.sample()
        seen, _, terminated, truncated, _ = masked.step(action)
        moving, *_ = full.step(action)
        if terminated or truncated:  # the same step for both: the same dynamics
            seen, moving = masked.reset(seed=step)[0], full.reset(seed=step)[0]
    assert nonzero > 20  # the full env's velocities did move: the mask hid something


@pytest.mark.parametrize("zoo_id", list(VELOCITIES))
def test_the_zoo_ids_make_with_one_time_limit_the_inner_envs(zoo_id):
    needs_box2d(zoo_id)
    inner = VELOCITIES[zoo_id][0]
    env = gym.make(zoo_id)  # registered by importing benchmarks.zoo_envs
    assert isinstance(env.unwrapped, type(gym.make(inner).unwrapped))
    chain = [env]
    while hasattr(chain[-1], "env"):
        chain.append(chain[-1].env)
    limits = [layer for layer in chain if isinstance(layer, gym.wrappers.TimeLimit)]
    assert [limit._max_episode_steps for limit in limits] == [gym.spec(inner).max_episode_steps]


def test_train_py_takes_each_entry_by_its_exact_name():
    settings = zoo.ours_settings("CartPoleNoVel-v1", seed=4, budget=100_000)
    config = settings.config
    assert settings.env_id == "benchmarks.zoo_envs:CartPoleNoVel-v1"
    assert settings.total_timesteps == 100_000 and config.seed == 4 and config.device == "cpu"
    assert (config.n_envs, config.n_steps, config.batch_size, config.n_epochs) == (8, 32, 256, 20)
    assert (config.gamma, config.gae_lambda, config.ent_coef) == (0.98, 0.8, 0.0)
    assert (config.learning_rate, config.lr_schedule) == (1e-3, "linear")
    assert (config.clip_range, config.clip_schedule) == (0.2, "linear")
    assert settings.notes == []  # no "trains with the settings of ..." note
    for name in ("MountainCarNoVel-v0", "Acrobot-v1", "LunarLanderNoVel-v2"):
        assert zoo.ours_settings(name, 0, 1000).notes == []


ZOO_VALUES = {  # copied by hand from tests/data/ppo_lstm.yml; absent: sb3-contrib's default
    "CartPoleNoVel-v1": dict(n_envs=8, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                             n_epochs=20, ent_coef=0.0, lr=0.001, clip=0.2, lin=True, norm=False),
    "MountainCarNoVel-v0": dict(n_envs=16, n_steps=16, batch_size=128, gae_lambda=0.98,
                                gamma=0.99, n_epochs=4, ent_coef=0.0, lr=3e-4, clip=0.2,
                                lin=False, norm=True),
    "Acrobot-v1": dict(n_envs=16, n_steps=256, batch_size=128, gae_lambda=0.94, gamma=0.99,
                       n_epochs=4, ent_coef=0.0, lr=3e-4, clip=0.2, lin=False, norm=True),
    "LunarLanderNoVel-v2": dict(n_envs=16, n_steps=1024, batch_size=64, gae_lambda=0.98,
                                gamma=0.999, n_epochs=4, ent_coef=0.01, lr=3e-4, clip=0.2,
                                lin=False, norm=False),
}  # fmt: skip


@pytest.mark.parametrize("name", list(zoo.ENTRIES))
def test_sb3_contrib_builds_each_entry_as_the_zoo_writes_it(name):
    needs_box2d(name)
    from stable_baselines3.common.vec_env import VecNormalize

    want = ZOO_VALUES[name]
    model, vec_env = zoo.build_sb3(
        zoo.ENTRIES[name].env_id, zoo.sb3_settings(zoo.zoo_entry(name)), seed=0
    )
    assert vec_env.num_envs == want["n_envs"]
    for key in ("n_steps", "batch_size", "gae_lambda", "gamma", "n_epochs", "ent_coef"):
        assert getattr(model, key) == want[key], key
    # SB3's schedules take the progress remaining: 1 at the start, 0 at the end
    for start in (1.0, 0.5):
        factor = start if want["lin"] else 1.0
        assert model.lr_schedule(start) == pytest.approx(want["lr"] * factor)
        assert model.clip_range(start) == pytest.approx(want["clip"] * factor)
    assert isinstance(vec_env, VecNormalize) == want["norm"]
    if want["norm"]:
        assert vec_env.norm_obs and vec_env.norm_reward and vec_env.gamma == want["gamma"]
    assert model.policy.lstm_actor.hidden_size == 256  # sb3-contrib's default, as the zoo's
    assert model.policy.lstm_critic is not None
    vec_env.close()


def test_sb3_settings_refuse_what_they_do_not_read():
    with pytest.raises(ValueError, match="policy_kwargs"):
        zoo.sb3_settings({"policy": "MlpLstmPolicy", "policy_kwargs": "dict(ortho_init=False)"})
    with pytest.raises(ValueError, match="only lin_"):
        zoo.sb3_settings({"policy": "MlpLstmPolicy", "learning_rate": "exp_0.1"})


def params_at(name: str, budget: int, at: int, evaluate_there: bool) -> dict[str, torch.Tensor]:
    """Our model's parameters after the first update at or past `at` steps of a `budget`-step
    run of entry `name`, trained as the benchmark trains it (an evaluation there if asked)."""
    from agent import RecurrentPPO
    from agent.run.evaluation import evaluate

    settings = zoo.ours_settings(name, seed=0, budget=budget)
    model = RecurrentPPO(settings.env_id, settings.config)
    kept = {}

    def after_update(m):
        if not kept and m.num_timesteps >= at:
            if evaluate_there:
                evaluate(m, settings.env_id, n_episodes=2, seed=1000)
            kept.update({k: v.clone() for k, v in m.policy.state_dict().items()})

    model.learn(settings.total_timesteps, callback=after_update)
    model.close()
    return kept


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def one_thread():
    """One torch thread, as the benchmark's jobs run: two on a busy 2-core machine made these
    runs 25 times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_our_model_at_b_in_a_longer_run_is_a_b_step_run(one_thread):
    # MountainCarNoVel-v0 (256 steps an update): a constant learning rate, normalised
    # observations and rewards
    short = params_at("MountainCarNoVel-v0", budget=256, at=256, evaluate_there=False)
    inside = params_at("MountainCarNoVel-v0", budget=512, at=256, evaluate_there=True)
    assert same(short, inside)
    # CartPoleNoVel-v1 anneals its learning rate over the budget: there the two differ, which
    # is why it compares at its full budget
    short = params_at("CartPoleNoVel-v1", budget=256, at=256, evaluate_there=False)
    inside = params_at("CartPoleNoVel-v1", budget=512, at=256, evaluate_there=False)
    assert not same(short, inside)


def test_plan_compares_annealed_entries_at_their_full_budget(capsys):
    args = argparse.Namespace(
        entries=["CartPoleNoVel-v1", "Acrobot-v1"], quick=False, compare_at=200_000,
        seeds=[0, 1, 2], sb3_seeds=[0], only=None, episodes=50,
    )  # fmt: skip
    jobs = zoo.plan(args)
    assert [(j.entry, j.library, j.seed, j.budget, j.compare_at) for j in jobs] == [
        ("CartPoleNoVel-v1", "ours", 0, 100_000, 100_000),
        ("CartPoleNoVel-v1", "sb3", 0, 100_000, 100_000),
        ("Acrobot-v1", "ours", 0, 1_000_000, 200_000),
        ("Acrobot-v1", "sb3", 0, 200_000, 200_000),
        ("CartPoleNoVel-v1", "ours", 1, 100_000, 100_000),
        ("Acrobot-v1", "ours", 1, 1_000_000, 200_000),
        ("CartPoleNoVel-v1", "ours", 2, 100_000, 100_000),
        ("Acrobot-v1", "ours", 2, 1_000_000, 200_000),
    ]


def line(entry, library, seed, final, at_b, wall, steps, budget, compare_at):
    """A hand-made results line."""
    return {
        "entry": entry, "library": library, "seed": seed, "budget": budget,
        "compare_at": compare_at, "episodes": 50, "steps": steps, "wall": wall,
        "final_return": final, "final_std": 1.0, "compare_steps": compare_at,
        "compare_return": at_b, "curve": [[compare_at, wall / 2, at_b], [steps, wall, final]],
    }  # fmt: skip


def test_table_reprints_the_results_file(tmp_path, capsys):
    results = [
        line("Acrobot-v1", "ours", 0, -100.0, -150.0, 400.0, 1_000_000, 1_000_000, 200_000),
        line("Acrobot-v1", "ours", 1, -80.0, -130.0, 500.0, 1_000_000, 1_000_000, 200_000),
        line("Acrobot-v1", "ours", 2, -90.0, -110.0, 450.0, 1_000_000, 1_000_000, 200_000),
        line("Acrobot-v1", "sb3", 0, -120.0, -120.0, 1000.0, 200_000, 200_000, 200_000),
        line("CartPoleNoVel-v1", "ours", 0, 500.0, 500.0, 50.0, 100_000, 100_000, 100_000),
    ]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in results))
    assert zoo.main(["--out", str(tmp_path), "--table"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| `")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    # -90 ± 10 over 3 seeds: t(0.975, 2) = 4.303, half-width 4.303 * 10 / sqrt(3) = 24.8
    assert cells == [
        ["`CartPoleNoVel-v1` (100k; 100k)", "500.0, 1", "500.0", "", "50 s (2,000 steps/s)", ""],
        [
            "`Acrobot-v1` (1000k; 200k)", "-90.0 ± 10.0 (-114.8, -65.2), 3", "-130.0",
            "-120.0", "7.5 min (2,222 steps/s)", "16.7 min (200 steps/s)",
        ],
    ]  # fmt: skip
    assert zoo.main(["--out", str(tmp_path), "--table", "--entries", "Acrobot-v1"]) == 0
    assert "CartPoleNoVel" not in capsys.readouterr().out


def test_a_quick_run_of_our_side_writes_its_line_once(tmp_path, capsys):
    argv = ["--quick", "--entries", "CartPoleNoVel-v1", "--only", "ours", "--out", str(tmp_path)]
    assert zoo.main(argv) == 0
    assert "1 jobs to run" in capsys.readouterr().out
    (result,) = jobs.load_results(tmp_path)
    assert (result["entry"], result["library"], result["seed"]) == ("CartPoleNoVel-v1", "ours", 0)
    assert result["budget"] == result["compare_at"] == result["steps"] == zoo.QUICK_BUDGET
    assert result["compare_return"] == result["final_return"] > 0 and result["wall"] > 0
    steps = [point[0] for point in result["curve"]]
    assert steps == sorted(steps) and steps[-1] == zoo.QUICK_BUDGET
    assert result["zoo"]["n_envs"] == 8 and result["settings"]["clip_schedule"] == "linear"
    assert zoo.main(argv) == 0
    assert "0 jobs to run" in capsys.readouterr().out
