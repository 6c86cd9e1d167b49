"""benchmarks/sb3_peer.py: our settings reach sb3-contrib's model as the benchmarks promise, one
record after every update, and an evaluation with the training env's frozen statistics."""

import json

import numpy as np
import pytest
import torch

from benchmarks import memory_length, sb3_peer, throughput


def test_zoo_cartpole_translates_to_sb3_contribs_names():
    ours = throughput.hyperparameters(throughput.TASKS["cartpole"], {})
    settings = sb3_peer.sb3_settings(ours)
    lr = settings.pop("learning_rate")
    assert [lr(p) for p in (1.0, 0.5, 0.0)] == [1e-3, 5e-4, 0.0]  # linear, as ours
    assert settings == {
        "n_envs": 8, "normalize_obs": True, "n_steps": 32, "batch_size": 256, "n_epochs": 20,
        "gamma": 0.98, "gae_lambda": 0.8, "clip_range": 0.2, "ent_coef": 0.0,
        "policy_kwargs": {
            "enable_critic_lstm": True, "lstm_hidden_size": 64, "ortho_init": False,
            "net_arch": {"pi": [64], "vf": [64]}, "activation_fn": torch.nn.ReLU,
        },
    }  # fmt: skip


def test_a_linear_clip_schedule_is_sb3_contribs_linear_schedule():
    clip = sb3_peer.sb3_settings({"clip_range": 0.1, "clip_schedule": "linear"})["clip_range"]
    assert [clip(p) for p in (1.0, 0.5, 0.0)] == [0.1, 0.05, 0.0]
    assert (
        sb3_peer.sb3_settings({"clip_range": 0.1, "clip_schedule": "constant"})["clip_range"] == 0.1
    )


@pytest.mark.parametrize("name", list(throughput.TASKS))
def test_throughput_sides_differ_only_where_the_task_says(name):
    task = throughput.TASKS[name]
    ours = throughput.hyperparameters(task, {})
    sb3 = sb3_peer.sb3_settings(throughput.hyperparameters(task, task.get("sb3_hp", {})))
    for key in sb3_peer.SAME_NAMES:
        if key in ours and key not in task.get("sb3_hp", {}):
            assert sb3[key] == ours[key], key
    assert sb3["policy_kwargs"]["lstm_hidden_size"] == ours["lstm_hidden_size"]
    if name == "tmaze":  # one T-maze cycle per rollout on each side (SB3 resets within the step)
        assert (ours["n_steps"], sb3["n_steps"]) == (302, 301)


def test_memory_length_settings_are_stored_as_json():
    config = memory_length.sb3_config(10)
    assert json.loads(json.dumps(config)) == config  # the results file holds them
    assert config["policy_kwargs"]["net_arch"] == {"pi": [64], "vf": [64]}
    assert "ortho_init" not in config["policy_kwargs"]  # sb3-contrib's default, as ours


@pytest.mark.parametrize(
    "ours", [{"forget_bias_init": "chrono"}, {"learning_rate": 1e-3, "lr_schedule": "adaptive"}]
)
def test_a_setting_without_counterpart_is_refused(ours):
    with pytest.raises(ValueError, match="counterpart"):
        sb3_peer.sb3_settings(ours)


def test_the_model_is_built_as_the_settings_say():
    ours = {"n_envs": 2, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "gamma": 0.9}
    ours |= {"lstm_hidden_size": 8, "net_arch": [16], "activation_fn": "relu", "adam_eps": 1e-7}
    settings = sb3_peer.sb3_settings({**ours, "normalize_obs": True})
    trained = sb3_peer.train("Memory/CartPoleNoVel-v0", settings, seed=0, steps=32)
    model = trained.model
    assert (model.n_envs, model.n_steps, model.batch_size, model.n_epochs) == (2, 16, 32, 1)
    assert model.policy.lstm_actor.hidden_size == 8 and model.policy.lstm_critic is not None
    assert model.policy.optimizer.defaults["eps"] == 1e-7
    assert isinstance(model.policy.mlp_extractor.policy_net[1], torch.nn.ReLU)
    assert trained.env.gamma == 0.9 and not trained.env.norm_reward
    assert model.num_timesteps == 32 and trained.wall > 0


def test_a_record_after_every_update_and_an_evaluation_with_frozen_statistics():
    updates: list[sb3_peer.Update] = []
    settings = {"n_envs": 4, "n_steps": 8, "batch_size": 32, "n_epochs": 1, "normalize_obs": True}
    env, env_kwargs = "Memory/TMaze-v0", {"length": 2}
    trained = sb3_peer.train(
        env, settings, seed=0, steps=3 * 32, env_kwargs=env_kwargs, after_update=updates.append
    )
    assert [u.steps for u in updates] == [32, 64, 96]  # three updates, the last one included
    assert updates[0].seconds < updates[1].seconds < updates[2].seconds <= trained.wall
    last = updates[-1]
    assert len(last.returns) == len(last.successes) > 0  # a T-maze episode lasts 3 steps
    assert np.array_equal(np.asarray(last.returns) > 0, np.asarray(last.successes) == 1.0)

    seen = trained.env.obs_rms.count
    result = sb3_peer.evaluate(trained, env, episodes=6, n_envs=2, seed=1000, env_kwargs=env_kwargs)
    assert trained.env.obs_rms.count == seen  # evaluation does not move the statistics
    assert len(result.returns) == len(result.successes) == 6
    assert [r > 0 for r in result.returns] == [s == 1.0 for s in result.successes]


def test_sb3_contrib_gets_the_cnn_policy_only_for_images_its_naturecnn_takes():
    from gymnasium import spaces

    def image(shape):
        return spaces.Box(0, 255, shape, np.uint8)

    assert sb3_peer.policy_for(image((84, 84, 3))) == "CnnLstmPolicy"
    assert sb3_peer.policy_for(image((3, 36, 36))) == "CnnLstmPolicy"
    assert sb3_peer.policy_for(image((35, 84, 3))) == "MlpLstmPolicy"  # a side too short
    assert sb3_peer.policy_for(image((7, 7, 3))) == "MlpLstmPolicy"  # MiniGrid's codes
    assert sb3_peer.policy_for(spaces.Dict({"image": image((84, 84, 3))})) == "MultiInputLstmPolicy"


def test_the_image_tasks_run_both_sides_at_our_defaults():
    """minigrid-codes and minigrid-rgb give sb3-contrib our defaults, not its own."""
    from agent.config import PPOConfig

    ours = throughput.hyperparameters(throughput.TASKS["minigrid-rgb"], {})
    for key in ("n_envs", "n_steps", "batch_size", "n_epochs", "learning_rate", "ent_coef"):
        assert ours[key] == getattr(PPOConfig(), key)
    settings = sb3_peer.sb3_settings(ours)
    assert settings["n_steps"] == 128 and settings["policy_kwargs"]["lstm_hidden_size"] == 128
