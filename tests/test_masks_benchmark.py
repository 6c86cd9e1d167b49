"""benchmarks/masks.py and its envs: Taxi's partial view, the wrapper that hides masks, the
settings sb3-contrib's agents get, and a quick run of the pipeline."""

import gymnasium as gym
import numpy as np
import pytest

from agent import RecurrentPPO
from agent.config import PPOConfig
from benchmarks import jobs, mask_envs, masks
from benchmarks.mask_envs import ROWS, HideMasks

TAXI = "benchmarks.mask_envs:TaxiDestination-v0"


def test_taxi_shows_the_destination_at_the_first_step_only():
    env = gym.make(TAXI)
    obs, info = env.reset(seed=3)
    row, col, _, destination = env.unwrapped.decode(env.unwrapped.s)
    assert obs.sum() == 4 and obs[row] == obs[ROWS + col] == 1
    assert obs[-4 + destination] == 1  # the destination's one-hot, the last four entries
    assert "action_mask" in info
    for _ in range(5):
        obs, *_, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
        assert obs.sum() == 3 and not obs[-4:].any()  # row, column, passenger; no destination
        assert "action_mask" in info


def test_taxis_best_return_with_the_destination_known_is_7_93():
    """Value iteration over Taxi's transition table (its public `P`): the mean, over Taxi's
    start states, of the best return. With memory the partial view loses nothing, so this is
    TaxiDestination's optimum too (benchmarks/masks.py's `Task.optimal`)."""
    taxi = gym.make(mask_envs.TAXI).unwrapped
    values = np.zeros(taxi.observation_space.n)
    for _ in range(100):
        new = np.array([
            max(sum(p * (r + (0.0 if done else values[s2])) for p, s2, r, done in moves)
                for moves in taxi.P[s].values())
            for s in range(len(values))
        ])  # fmt: skip
        if np.abs(new - values).max() < 1e-9:
            break
        values = new
    optimum = float(taxi.initial_state_distrib @ values)
    assert optimum == pytest.approx(7.93, abs=0.005)
    assert masks.TASKS["taxi"].optimal == pytest.approx(optimum, abs=0.005)


def rollout_masks(env):
    """The masks a rollout of a small model on `env` stored (None: it found none)."""
    model = RecurrentPPO(env, n_envs=2, n_steps=8, batch_size=16, lstm_hidden_size=8, seed=0)
    model.learn(16)
    return model.collect_rollout().masks


@pytest.mark.parametrize("env_id", ["Memory/CardMatch-v0", TAXI])
def test_hide_masks_leaves_the_agent_no_mask(env_id):
    # CardMatch's masks come from its method, Taxi's from info: both are found without the
    # wrapper, and neither with it.
    assert rollout_masks(env_id) is not None
    assert (
        rollout_masks(gym.vector.SyncVectorEnv([lambda: HideMasks(gym.make(env_id))] * 2)) is None
    )


def test_taxi_masks_for_sb3_contribs_action_masker():
    env = gym.make(TAXI)
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(mask_envs.taxi_masks(env), info["action_mask"].astype(bool))


def test_sb3_agents_get_the_presets_settings_and_our_network_sizes():
    settings, left = masks.sb3_model_settings(masks.TASKS["cards"], "recurrent-ppo")
    assert left == ["forget_bias_init"]  # chrono in the preset, no sb3-contrib counterpart
    assert (settings["n_envs"], settings["n_steps"], settings["batch_size"]) == (16, 64, 256)
    assert settings["ent_coef"] == 0.0 and "normalize" not in settings
    assert settings["policy_kwargs"]["lstm_hidden_size"] == 128
    assert settings["policy_kwargs"]["net_arch"] == {"pi": [64], "vf": [64]}
    maskable, _ = masks.sb3_model_settings(masks.TASKS["cards"], "maskable-ppo")
    assert "lstm_hidden_size" not in maskable["policy_kwargs"]
    assert "enable_critic_lstm" not in maskable["policy_kwargs"]
    # What a preset leaves out is ours, not sb3-contrib's other defaults (8 envs, 2048 steps,
    # minibatches of 64, a learning rate of 3e-4 and no entropy bonus for MaskablePPO)
    taxi, left = masks.sb3_model_settings(masks.TASKS["taxi"], "maskable-ppo")
    assert left == ["forget_bias_init"] and taxi["normalize"] == {
        "norm_obs": False, "norm_reward": True, "gamma": 0.99
    }  # fmt: skip
    for key in ("n_envs", "n_steps", "batch_size", "learning_rate", "ent_coef", "gae_lambda"):
        assert taxi[key] == getattr(PPOConfig(), key), key
    assert taxi["policy_kwargs"]["optimizer_kwargs"] == {"eps": PPOConfig().adam_eps}


def test_a_quick_run_writes_one_line_per_agent_once(tmp_path, capsys):
    argv = ["--quick", "--out", str(tmp_path), "--tasks", "cards"]
    assert masks.main(argv) == 0
    lines = jobs.load_results(tmp_path)
    assert sorted(x["agent"] for x in lines) == sorted(masks.AGENTS)
    for line in lines:
        assert line["steps"] >= masks.QUICK_BUDGET and line["wall"] > 0
        assert line["final_return"] is not None and 0 <= line["final_return"] <= 1
    out = capsys.readouterr().out
    assert "| cards (2k, 0.95) | maskable-ppo * |" in out
    assert masks.main(argv) == 0 and "0 jobs to run" in capsys.readouterr().out


def test_a_curve_point_waits_for_a_full_window_of_episodes():
    # Taxi's first rollout ends only the episodes that delivered: their mean flatters
    assert jobs.full_window([20.0] * 99) == []
    assert jobs.full_window([20.0] * 100) == [20.0] * 100
