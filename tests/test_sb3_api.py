"""An SB3 user's calls work as written: sb3-contrib's documented RecurrentPPO examples with only
the import changed, the constructor's forms and env kinds, `policy_kwargs`, SB3's callbacks and
logger, `get_env`, and save/load paths; what differs is refused with one line saying why."""

from __future__ import annotations

import copy
import sys
import types

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
)
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecCheckNan,
    VecFrameStack,
    VecMonitor,
    VecNormalize,
)
from torch import nn

import envs  # noqa: F401  (registers Memory/)
from agent import ConfigError, EnvError, PPOConfig, RecurrentPPO
from agent.algorithm import ppo as ppo_module
from agent.algorithm import sb3_api, sb3_callbacks, sb3_names
from agent.report.curves import read_scalars
from tests.conftest import require

TINY = {"n_steps": 8, "lstm_hidden_size": 8, "n_epochs": 1, "device": "cpu"}
"""Settings that keep every model here small and quick."""

# ------------------------------------------------------------ sb3-contrib's own examples ---

SOURCE = "Stable-Baselines-Team/stable-baselines3-contrib@0ca7fdd8d1150bd3a48b86016a85db036efc3b6d"

# sb3-contrib documents RecurrentPPO with two examples (its README has none).
# From SOURCE, docs/modules/ppo_recurrent.md, "Example" (verbatim).
MODULE_EXAMPLE = """\
import numpy as np

from sb3_contrib import RecurrentPPO
from stable_baselines3.common.evaluation import evaluate_policy

model = RecurrentPPO("MlpLstmPolicy", "CartPole-v1", verbose=1)
model.learn(5000)

vec_env = model.get_env()
mean_reward, std_reward = evaluate_policy(model, vec_env, n_eval_episodes=20, warn=False)
print(mean_reward)

model.save("ppo_recurrent")
del model # remove to demonstrate saving and loading

model = RecurrentPPO.load("ppo_recurrent")

obs = vec_env.reset()
# cell and hidden state of the LSTM
lstm_states = None
num_envs = 1
# Episode start signals are used to reset the lstm states
episode_starts = np.ones((num_envs,), dtype=bool)
while True:
    action, lstm_states = model.predict(obs, state=lstm_states, episode_start=episode_starts, deterministic=True)
    obs, rewards, dones, info = vec_env.step(action)
    episode_starts = dones
    vec_env.render("human")
"""

# From SOURCE, docs/guide/examples.md, "RecurrentPPO" (verbatim).
GUIDE_EXAMPLE = """\
import numpy as np

from sb3_contrib import RecurrentPPO

model = RecurrentPPO("MlpLstmPolicy", "CartPole-v1", verbose=1)
model.learn(5000)

vec_env = model.get_env()
obs = vec_env.reset()
# Cell and hidden state of the LSTM
lstm_states = None
num_envs = 1
# Episode start signals are used to reset the lstm states
episode_starts = np.ones((num_envs,), dtype=bool)
while True:
    action, lstm_states = model.predict(obs, state=lstm_states, episode_start=episode_starts, deterministic=True)
    # Note: vectorized environment resets automatically
    obs, rewards, dones, info = vec_env.step(action)
    episode_starts = dones
    vec_env.render("human")
"""

STEPS = 200
"""How many steps the examples' endless `while True:` loops run here."""


def runnable(example: str) -> str:
    """The example with our import, a bounded loop and the smallest `learn` (one rollout)."""
    replacements = {
        "from sb3_contrib import RecurrentPPO": "from agent import RecurrentPPO",
        "while True:": f"for _ in range({STEPS}):",
        "model.learn(5000)": "model.learn(1)",
    }
    for old, new in replacements.items():
        assert example.count(old) == 1, old
        example = example.replace(old, new)
    return example


@pytest.fixture
def screen(monkeypatch):
    """SB3 shows `render("human")` frames of an `rgb_array` env with OpenCV: a stand-in that
    keeps the frames."""
    require("pygame")  # CartPole draws its frames with it
    frames: list[np.ndarray] = []
    cv2 = types.SimpleNamespace(imshow=lambda name, image: frames.append(image), waitKey=int)
    monkeypatch.setitem(sys.modules, "cv2", cv2)
    return frames


@pytest.mark.parametrize("example", [MODULE_EXAMPLE, GUIDE_EXAMPLE], ids=["module", "guide"])
def test_sb3_contrib_examples_run_with_only_the_import_changed(
    example, screen, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    # Our defaults (16 copies of 128 steps, 10 epochs) take seconds an iteration: tiny ones here.
    small = PPOConfig(n_envs=2, n_steps=16, batch_size=32, n_epochs=1, lstm_hidden_size=16)
    monkeypatch.setattr(sb3_api, "PPOConfig", lambda: copy.deepcopy(small))
    namespace: dict = {}
    exec(compile(runnable(example), "example", "exec"), namespace)
    assert isinstance(namespace["model"], RecurrentPPO)
    assert len(screen) == STEPS and screen[0].ndim == 3  # a frame per step
    assert "total_timesteps" in capsys.readouterr().out  # verbose=1: SB3's table
    if "model.save" in example:
        assert (tmp_path / "ppo_recurrent.zip").is_file()
        assert 8 <= namespace["mean_reward"] <= 500


# ---------------------------------------------------------------------- constructor forms ---


def test_the_sb3_form_takes_the_policy_first_by_position_keyword_or_class():
    from sb3_contrib.ppo_recurrent import MlpLstmPolicy

    for model in (
        RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_envs=2, **TINY),
        RecurrentPPO("MlpLstmPolicy", env="CartPole-v1", n_envs=2, **TINY),
        RecurrentPPO(policy="MlpLstmPolicy", env="CartPole-v1", n_envs=2, **TINY),
        RecurrentPPO(MlpLstmPolicy, "CartPole-v1", n_envs=2, **TINY),
    ):
        assert model.env_spec["id"] == "CartPole-v1" and model.n_envs == 2
        assert model.config.rnn_type == "lstm"
        model.close()
    memoryless = RecurrentPPO("MlpPolicy", "CartPole-v1", n_envs=2, **TINY)
    assert memoryless.config.rnn_type == "none"
    memoryless.close()


def test_our_forms_keep_working(tmp_path):
    config = PPOConfig(n_envs=2, n_steps=8, batch_size=16, lstm_hidden_size=8)
    model = RecurrentPPO(
        "Memory/TMaze-v0",
        config,
        env_kwargs={"length": 4},
        wrappers=["gymnasium.wrappers:RecordEpisodeStatistics"],
        n_epochs=1,
    )
    assert model.config.n_epochs == 1 and model.env_spec["kwargs"] == {"length": 4}
    model.close()
    model = RecurrentPPO("CartPole-v1", n_steps=32, n_envs=2, batch_size=64)
    assert model.config.n_steps == 32
    model.close()
    model = RecurrentPPO(env="CartPole-v1", config=config)
    assert model.config.n_envs == 2
    model.close()
    model = RecurrentPPO(
        None, observation_space=spaces.Box(-1, 1, (3,)), action_space=spaces.Discrete(2)
    )
    assert model.env is None and model.get_env() is None


def test_an_unknown_argument_is_one_line_with_the_closest_name(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("an env was made before the arguments were checked")

    monkeypatch.setattr(ppo_module, "make_vec_env", must_not_run)
    with pytest.raises(ConfigError) as error:
        RecurrentPPO("CartPole-v1", n_step=32)
    assert str(error.value) == (
        "RecurrentPPO got unknown argument 'n_step' (did you mean n_steps?); the "
        "hyperparameters are PPOConfig's fields"
    )
    with pytest.raises(ConfigError, match=r"'polcy_kwargs' \(did you mean policy_kwargs\?\)"):
        RecurrentPPO("MlpLstmPolicy", "CartPole-v1", polcy_kwargs={})


def test_a_misspelt_policy_or_two_envs_are_refused():
    with pytest.raises(ConfigError, match="did you mean MlpLstmPolicy"):
        RecurrentPPO("MlpLstmPolcy", "CartPole-v1")
    with pytest.raises(ConfigError, match="two envs"):
        RecurrentPPO("CartPole-v1", "Acrobot-v1")
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy

    class CustomPolicy(RecurrentActorCriticPolicy):
        pass

    with pytest.raises(ConfigError, match="CustomPolicy is not one this agent reads"):
        RecurrentPPO(CustomPolicy, "CartPole-v1")


def test_the_device_is_checked_before_any_env_is_made(monkeypatch):
    made = []
    monkeypatch.setattr(ppo_module, "make_vec_env", lambda *a, **k: made.append(a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        RecurrentPPO("MlpLstmPolicy", "CartPole-v1", device="cuda")
    assert made == []


@pytest.mark.parametrize(
    ("policy", "env_id", "message"),
    [
        ("CnnLstmPolicy", "CartPole-v1", r"CnnLstmPolicy reads images .* use MlpLstmPolicy"),
        ("MultiInputLstmPolicy", "CartPole-v1", "MultiInputLstmPolicy reads Dict observations"),
        ("MultiInputLstmPolicy", "Memory/VisualMatch-v0", "Box.*: use CnnLstmPolicy"),
    ],
)
def test_a_policy_that_does_not_fit_the_space_is_refused_and_closes_the_env(
    policy, env_id, message, monkeypatch
):
    made, original = [], ppo_module.make_vec_env

    def make_vec_env(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ppo_module, "make_vec_env", make_vec_env)
    with pytest.raises(ConfigError, match=message):
        RecurrentPPO(policy, env_id, n_envs=2, vec_env="sync", **TINY)
    assert made and made[0].unwrapped.closed


def test_policy_names_fit_their_spaces():
    image = RecurrentPPO("CnnLstmPolicy", "Memory/VisualMatch-v0", n_envs=2, **TINY)
    image.close()
    space = spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Discrete(3)})
    with pytest.raises(ConfigError, match="use MultiInputLstmPolicy"):
        sb3_names.check_policy("MlpLstmPolicy", space)
    sb3_names.check_policy("MultiInputLstmPolicy", space)


# ------------------------------------------------------------------------------ env kinds ---


def test_a_gym_env_is_one_copy_shared_with_get_env_as_in_sb3():
    env = gym.make("CartPole-v1")
    model = RecurrentPPO("MlpLstmPolicy", env, **TINY)
    assert model.n_envs == 1 and model.config.batch_size == 8  # one minibatch of the rollout
    model.learn(16)
    assert model.get_env().envs[0].unwrapped is env.unwrapped
    assert 8 < model.get_env().envs[0].get_total_steps() <= 16  # its Monitor saw the training
    model.close()


def test_a_gym_env_in_our_form_trains_too():
    """The issue's `RecurrentPPO(gym.make(...))`: one copy, batches of the whole rollout."""
    model = RecurrentPPO(gym.make("CartPole-v1"), n_steps=16, lstm_hidden_size=8, n_epochs=1)
    model.learn(16)
    assert model.num_timesteps == 16 and model.n_updates == 1


def test_a_gymnasium_vector_env_gets_a_separate_copy_for_get_env():
    vector = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    model = RecurrentPPO("MlpLstmPolicy", vector, **TINY)
    copy = model.get_env()
    assert isinstance(copy, DummyVecEnv) and copy.num_envs == 1
    assert copy is model.get_env()  # made once
    assert all(e.unwrapped is not copy.envs[0].unwrapped for e in vector.envs)
    copy.reset()
    copy.step(np.array([0]))
    closed = []
    copy.close = lambda: closed.append(True)
    model.close()
    assert closed  # the copy is the model's to close


def test_an_id_s_get_env_copy_has_its_kwargs_and_wrappers_and_renders():
    model = RecurrentPPO(
        "MlpLstmPolicy",
        "Memory/TMaze-v0",
        env_kwargs={"length": 3},
        wrappers=["gymnasium.wrappers:RecordEpisodeStatistics"],
        n_envs=2,
        **TINY,
    )
    single = model.get_env().envs[0]
    assert single.unwrapped.spec.kwargs["length"] == 3
    assert isinstance(single.env, gym.wrappers.RecordEpisodeStatistics)
    assert single.render_mode == "rgb_array"
    model.close()


def test_a_dummy_vec_env_s_own_envs_are_trained_on():
    venv = sb3_make_vec_env("CartPole-v1", n_envs=2)
    model = RecurrentPPO("MlpLstmPolicy", venv, **TINY)
    assert model.n_envs == 2 and model.get_env() is venv
    model.learn(32)
    # 16 steps each, but for the reset step after each episode's end (NEXT_STEP autoreset)
    assert all(8 < monitor.get_total_steps() <= 16 for monitor in venv.envs)
    assert model.episode_statistics.return_queue  # its Monitors' `episode` infos untouched


def test_a_vec_monitor_is_read_through():
    venv = VecMonitor(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    model = RecurrentPPO("MlpLstmPolicy", venv, **TINY)
    assert model.get_env() is venv


@pytest.mark.parametrize(
    ("wrap", "message"),
    [
        (lambda v: VecFrameStack(v, 4), "FrameStackObservation"),
        (lambda v: VecCheckNan(v), "VecCheckNan: vector-env wrappers are not applied here"),
        (lambda v: VecMonitor(VecNormalize(v)), "VecNormalize must be the outermost"),
    ],
)
def test_vec_env_wrappers_are_refused_with_the_per_env_alternative(wrap, message):
    with pytest.raises(EnvError, match=message):
        RecurrentPPO("MlpLstmPolicy", wrap(DummyVecEnv([lambda: gym.make("CartPole-v1")] * 2)))


def test_a_subproc_vec_env_is_refused_with_the_alternative():
    venv = SubprocVecEnv([lambda: gym.make("CartPole-v1")] * 2, start_method="fork")
    try:
        with pytest.raises(EnvError, match=r"SubprocVecEnv: .*vec_env='async'"):
            RecurrentPPO("MlpLstmPolicy", venv)
    finally:
        venv.close()


def normalized_venv(**kwargs) -> VecNormalize:
    """A VecNormalize over two CartPoles whose statistics are set to recognisable numbers."""
    venv = VecNormalize(sb3_make_vec_env("CartPole-v1", n_envs=2), **kwargs)
    venv.obs_rms.mean = np.array([0.1, 0.2, 0.3, 0.4])
    venv.obs_rms.var = np.array([1.0, 2.0, 3.0, 4.0])
    venv.obs_rms.count = 1000.0
    venv.ret_rms.var = np.array(25.0)
    venv.ret_rms.count = 500.0
    return venv


def test_vec_normalize_statistics_and_settings_are_carried_over(tmp_path):
    venv = normalized_venv(norm_reward=True)
    model = RecurrentPPO("MlpLstmPolicy", venv, **TINY)
    assert model.config.normalize_obs and model.config.normalize_reward
    rms = model.obs_normalizer.rms
    np.testing.assert_array_equal(rms.mean, [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(rms.var, [1.0, 2.0, 3.0, 4.0])
    assert rms.count == 1000.0 and model.reward_normalizer.rms.var == 25.0
    assert model.get_vec_normalize_env() is venv and model.get_env() is venv.venv
    model.learn(32)
    assert venv.obs_rms.count > 1000.0  # learning updates the very statistics VecNormalize has
    np.testing.assert_array_equal(model.obs_normalizer.rms.mean, venv.obs_rms.mean)
    np.testing.assert_array_equal(model.reward_normalizer.rms.var, venv.ret_rms.var)
    model.save(tmp_path / "m")
    loaded = RecurrentPPO.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.obs_normalizer.rms.mean, venv.obs_rms.mean)
    obs = np.array([0.5, -0.5, 0.2, 1.0], dtype=np.float32)
    np.testing.assert_allclose(
        loaded.obs_normalizer(obs, update=False), venv.normalize_obs(obs), rtol=1e-5
    )


def test_without_vec_normalize_there_is_none():
    model = RecurrentPPO("MlpLstmPolicy", sb3_make_vec_env("CartPole-v1", n_envs=2), **TINY)
    assert model.get_vec_normalize_env() is None and model.obs_normalizer is None


@pytest.mark.parametrize(
    ("kwargs", "arguments", "message"),
    [
        ({"clip_obs": 5.0}, {}, r"VecNormalize\(clip_obs=5.0\) differs .* \(10.0\)"),
        ({"clip_reward": 1.0}, {}, r"VecNormalize\(clip_reward=1.0\)"),
        ({"epsilon": 1e-4}, {}, r"VecNormalize\(epsilon=0.0001\)"),
        (
            {"gamma": 0.9},
            {},
            r"VecNormalize\(gamma=0.9\) differs from the model's gamma .* gamma=0.9",
        ),
        ({"training": False}, {}, r"training=False\) freezes"),
        ({}, {"normalize_obs": False}, "normalize_obs=False contradicts the VecNormalize"),
    ],
)
def test_vec_normalize_settings_that_differ_are_refused(kwargs, arguments, message):
    with pytest.raises(ConfigError, match=message):
        RecurrentPPO("MlpLstmPolicy", normalized_venv(**kwargs), **arguments, **TINY)


def test_vec_normalize_without_reward_scaling_needs_no_equal_gamma():
    model = RecurrentPPO("MlpLstmPolicy", normalized_venv(norm_reward=False, gamma=0.5), **TINY)
    assert model.config.normalize_obs and not model.config.normalize_reward


def test_set_env_swaps_to_an_env_of_the_same_shape():
    model = RecurrentPPO("MlpLstmPolicy", sb3_make_vec_env("CartPole-v1", n_envs=2), **TINY)
    model.learn(16)
    other = sb3_make_vec_env("CartPole-v1", n_envs=2)
    model.set_env(other)
    assert model.get_env() is other and not model.continues_episodes
    model.learn(16)
    assert all(0 < monitor.get_total_steps() <= 8 for monitor in other.envs)
    with pytest.raises(EnvError, match="3 copies and the model 2"):
        model.set_env(sb3_make_vec_env("CartPole-v1", n_envs=3))


# -------------------------------------------------------------------------- policy_kwargs ---

BOX, TWO = spaces.Box(-1, 1, (3,), np.float32), spaces.Discrete(2)


def config_of(**arguments) -> PPOConfig:
    return RecurrentPPO(None, observation_space=BOX, action_space=TWO, **arguments).config


@pytest.mark.parametrize(
    ("policy_kwargs", "expected"),
    [
        (
            {"lstm_hidden_size": 16, "n_lstm_layers": 2},
            {"lstm_hidden_size": 16, "n_lstm_layers": 2},
        ),
        ({"shared_lstm": True, "enable_critic_lstm": False}, {"shared_lstm": True}),
        ({"enable_critic_lstm": True}, {"shared_lstm": False}),
        ({"net_arch": [32, 32]}, {"net_arch": [32, 32]}),
        ({"net_arch": {"pi": [32], "vf": [32]}}, {"net_arch": [32]}),
        ({"net_arch": [{"pi": [16], "vf": [16]}]}, {"net_arch": [16]}),
        ({"activation_fn": torch.nn.ReLU}, {"activation_fn": "relu"}),
        ({"activation_fn": nn.Tanh}, {"activation_fn": "tanh"}),
        ({"activation_fn": "nn.ReLU"}, {"activation_fn": "relu"}),  # the zoo's text
        ({"ortho_init": False, "log_std_init": -1.0}, {"ortho_init": False, "log_std_init": -1.0}),
        ({"optimizer_kwargs": {"eps": 1e-7}}, {"adam_eps": 1e-7}),
        ({"optimizer_kwargs": {}}, {"adam_eps": 1e-8}),  # SB3 sets 1e-5 only without them
        ({"optimizer_class": torch.optim.Adam}, {"adam_eps": 1e-5}),
        ({"optimizer_class": "th.optim.Adam"}, {"adam_eps": 1e-5}),
        ({"share_features_extractor": True, "normalize_images": True}, {}),
    ],
)
def test_policy_kwargs_are_translated(policy_kwargs, expected):
    config = config_of(policy_kwargs=policy_kwargs)
    assert {key: getattr(config, key) for key in expected} == expected


def test_policy_kwargs_build_the_network_they_say():
    model = RecurrentPPO(
        None,
        observation_space=BOX,
        action_space=TWO,
        policy_kwargs={"activation_fn": nn.ReLU, "net_arch": dict(pi=[5, 7], vf=[5, 7])},
    )
    linears = [m.out_features for m in model.policy.pi_mlp if isinstance(m, nn.Linear)]
    assert linears == [5, 7] and isinstance(model.policy.pi_mlp[1], nn.ReLU)


@pytest.mark.parametrize(
    ("policy_kwargs", "message"),
    [
        ({"features_extractor_class": object}, "encoder is chosen from the observation space"),
        ({"lstm_kwargs": {"dropout": 0.1}}, "lstm_kwargs does not apply here: the recurrent core"),
        ({"optimizer_class": torch.optim.SGD}, "torch.optim.SGD is not offered here"),
        ({"optimizer_kwargs": {"weight_decay": 1e-4}}, "weight_decay: only eps applies"),
        ({"activation_fn": nn.GELU}, r"nn.GELU is not offered here: choose nn.ReLU or nn.Tanh"),
        ({"net_arch": {"pi": [64], "vf": [32]}}, r"write net_arch=\[64\] or net_arch=\[32\]"),
        ({"enable_critic_lstm": False}, r"remove it .* or write shared_lstm=True"),
        ({"share_features_extractor": False}, "always share the encoder"),
        ({"use_sde": True}, "gSDE exploration is not implemented"),
        ({"full_std": True}, "gSDE"),
        ({"dropout": 0.5}, r"dropout does not apply here; the network's fields are lstm_hidden"),
    ],
)
def test_policy_kwargs_that_do_not_apply_say_why_in_one_line(policy_kwargs, message):
    with pytest.raises(ConfigError, match=message) as error:
        config_of(policy_kwargs=policy_kwargs)
    assert "\n" not in str(error.value)


def test_a_setting_given_twice_is_refused():
    with pytest.raises(ConfigError, match="lstm_hidden_size given both"):
        config_of(lstm_hidden_size=8, policy_kwargs={"lstm_hidden_size": 16})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"use_sde": True}, "use_sde: gSDE exploration is not implemented"),
        ({"sde_sample_freq": 4}, "sde_sample_freq"),
        ({"stats_window_size": 10}, "always over the last 100 episodes"),
        ({"learning_rate": lambda progress: 1e-3 * progress}, "lr_schedule='linear'"),
        ({"clip_range": lambda progress: 0.2}, "clip_range as a function"),
    ],
)
def test_sb3_constructor_arguments_without_counterpart_are_refused(arguments, message):
    with pytest.raises(ConfigError, match=message):
        config_of(**arguments)


def test_sb3_constructor_arguments_mean_what_they_mean_in_sb3():
    assert config_of(use_sde=False, sde_sample_freq=-1, stats_window_size=100).seed == 0
    assert config_of(device=torch.device("cpu")).device == "cpu"
    unseeded = {config_of(seed=None).seed for _ in range(3)}
    assert len(unseeded) == 3  # drawn, and kept in the config to repeat the run
    model = RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_envs=2, batch_size=None, **TINY)
    assert model.config.batch_size == 16  # SB3: the whole rollout
    model.close()


# ------------------------------------------------------------------------------ callbacks ---


class Recorder(BaseCallback):
    """Counts SB3's calls, and the episodes the per-env infos report."""

    def __init__(self, stop_at: int | None = None) -> None:
        super().__init__()
        self.events: list[str] = []
        self.episodes = 0
        self.stop_at = stop_at

    def _on_training_start(self) -> None:
        self.events.append("training_start")

    def _on_rollout_start(self) -> None:
        self.events.append("rollout_start")

    def _on_step(self) -> bool:
        assert self.training_env is self.model.get_env()
        infos, dones = self.locals["infos"], self.locals["dones"]
        assert len(infos) == len(dones) == self.model.n_envs
        self.episodes += sum("episode" in info for info in infos)
        assert all(
            "terminal_observation" in info for info, done in zip(infos, dones, strict=True) if done
        )
        return self.stop_at is None or self.n_calls < self.stop_at

    def _on_rollout_end(self) -> None:
        self.events.append("rollout_end")

    def _on_training_end(self) -> None:
        self.events.append("training_end")


def cartpoles(**arguments) -> RecurrentPPO:
    return RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_envs=2, **TINY, **arguments)


def test_a_base_callback_is_called_at_every_step_and_around_every_rollout():
    model = cartpoles()
    recorder = Recorder()
    model.learn(48, callback=recorder)
    assert recorder.n_calls == model.num_timesteps // model.n_envs == 24
    rollouts = ["rollout_start", "rollout_end"] * 3
    assert recorder.events == ["training_start", *rollouts, "training_end"]
    assert recorder.episodes == len(model.episode_statistics.return_queue) > 0
    model.close()


def test_infos_report_episodes_as_sb3_s_monitor_does_even_without_one():
    model = RecurrentPPO("MlpLstmPolicy", DummyVecEnv([lambda: gym.make("CartPole-v1")]), **TINY)
    recorder = Recorder()
    model.learn(64, callback=recorder)
    assert recorder.episodes == len(model.episode_statistics.return_queue) > 0


def test_returning_false_from_on_step_stops_learn_at_once_without_an_update():
    model = cartpoles()
    recorder = Recorder(stop_at=3)
    model.learn(1000, callback=recorder)
    assert recorder.n_calls == 3 and model.num_timesteps == 6  # SB3 counts the steps taken
    assert model.n_updates == 0  # the partial rollout is not learned from, as in SB3
    assert recorder.events[-1] == "training_end"
    model.close()


def test_a_callback_list_and_a_plain_list_call_every_callback():
    model = cartpoles()
    first, second = Recorder(), Recorder()
    model.learn(16, callback=CallbackList([first, second]))
    assert first.n_calls == second.n_calls == 8
    third, fourth = Recorder(), Recorder()
    model.learn(16, callback=[third, fourth])
    assert third.n_calls == fourth.n_calls == 8
    model.close()


def test_plain_functions_are_told_apart_by_signature():
    model = cartpoles()
    steps, updates = [], []

    def sb3_style(_locals, _globals):
        steps.append(_locals["self"].num_timesteps)
        return True

    model.learn(32, callback=sb3_style)
    assert steps == list(range(2, 34, 2))
    model.learn(32, callback=lambda m: updates.append(m.num_timesteps))
    assert updates == [16, 32]
    model.close()


def test_without_an_sb3_callback_the_rollout_calls_nothing_per_step(monkeypatch):
    def must_not_run(*args):
        raise AssertionError("the per-step hook ran without an SB3 callback")

    monkeypatch.setattr(sb3_callbacks, "on_step", must_not_run)
    model = cartpoles()
    model.learn(32, callback=lambda m: None)
    assert model.num_timesteps == 32
    model.close()


def test_checkpoint_callback_writes_files_that_load(tmp_path):
    model = cartpoles()
    model.learn(32, callback=CheckpointCallback(save_freq=4, save_path=str(tmp_path)))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["rl_model_16_steps.zip", "rl_model_24_steps.zip", "rl_model_32_steps.zip",
                     "rl_model_8_steps.zip"]  # fmt: skip
    loaded = RecurrentPPO.load(tmp_path / "rl_model_32_steps.zip")
    assert loaded.num_timesteps == 32
    model.close()


def test_a_checkpoint_saved_mid_rollout_continues_no_episodes(tmp_path):
    """TMaze's native vector env can save its state: a model saved between rollouts continues
    its episodes; one saved by a callback in the middle of a rollout starts fresh ones."""
    model = RecurrentPPO("MlpLstmPolicy", "Memory/TMaze-v0", n_envs=2, **TINY)
    model.learn(16, callback=CheckpointCallback(save_freq=3, save_path=str(tmp_path)))
    model.save(tmp_path / "between")
    assert RecurrentPPO.load(tmp_path / "between", env="recorded").continues_episodes
    middle = RecurrentPPO.load(tmp_path / "rl_model_6_steps.zip", env="recorded")
    assert not middle.continues_episodes and middle.num_timesteps == 6
    model.close()


def test_eval_callback_writes_results_best_model_and_tensorboard(tmp_path):
    model = cartpoles(tensorboard_log=tmp_path / "tb")
    evaluation = EvalCallback(
        sb3_make_vec_env("CartPole-v1", n_envs=1),
        n_eval_episodes=2,
        eval_freq=8,
        log_path=str(tmp_path / "eval"),
        best_model_save_path=str(tmp_path / "best"),
        verbose=0,
    )
    model.learn(32, callback=evaluation)
    results = np.load(tmp_path / "eval" / "evaluations.npz")
    assert list(results["timesteps"]) == [16, 32] and results["results"].shape == (2, 2)
    assert RecurrentPPO.load(tmp_path / "best" / "best_model").n_envs == 2
    model.close()
    scalars = read_scalars(tmp_path / "tb" / "RecurrentPPO_1")
    assert list(scalars["eval/mean_reward"].steps) == [16, 32]
    assert "rollout/ep_rew_mean" in scalars or "train/value_loss" in scalars


def test_an_eval_env_that_normalises_observations_again_is_refused():
    model = RecurrentPPO("MlpLstmPolicy", normalized_venv(), **TINY)
    evaluation = EvalCallback(normalized_venv(training=False), eval_freq=4)
    with pytest.raises(ConfigError, match="eval_env normalises observations"):
        model.learn(16, callback=[Recorder(), evaluation])


# -------------------------------------------------------------------- logger, TensorBoard ---


def test_the_logger_reaches_tensorboard(tmp_path):
    model = cartpoles(tensorboard_log=tmp_path)
    model.learn(16)
    model.logger.record("custom/value", 3.5)
    model.logger.record("custom/hidden", 1.0, exclude="tensorboard")
    model.logger.dump(step=7)
    model.close()
    scalars = read_scalars(tmp_path / "RecurrentPPO_1")
    assert list(scalars["custom/value"].steps) == [7] and scalars["custom/value"].values[0] == 3.5
    assert "custom/hidden" not in scalars


def test_verbose_prints_sb3_s_table_and_0_prints_nothing(capsys):
    cartpoles(verbose=1).learn(32, log_interval=2)
    out = capsys.readouterr().out
    assert out.startswith("Using cpu device") and out.count("| time/") == 1
    assert "|    iterations           | 2 " in out
    cartpoles().learn(16)
    assert capsys.readouterr().out == ""


def test_tensorboard_folders_are_sb3_s_in_its_form_and_the_folder_itself_in_ours(tmp_path):
    model = cartpoles(tensorboard_log=tmp_path / "sb3")
    model.learn(16, callback=Recorder(stop_at=1))  # logs nothing, and has a folder, as in SB3
    model.learn(16)
    model.learn(16)
    model.learn(16, reset_num_timesteps=False)
    model.close()
    assert sorted(p.name for p in (tmp_path / "sb3").iterdir()) == [
        "RecurrentPPO_1",
        "RecurrentPPO_2",
        "RecurrentPPO_3",
    ]
    assert list(read_scalars(tmp_path / "sb3" / "RecurrentPPO_3")["time/fps"].steps) == [16, 32]
    ours = RecurrentPPO(
        "CartPole-v1", n_envs=2, batch_size=16, **TINY, tensorboard_log=tmp_path / "ours"
    )
    ours.learn(16)
    ours.close()
    assert "time/fps" in read_scalars(tmp_path / "ours")


# ------------------------------------------------------------------------ save, load paths ---


def test_save_adds_zip_as_sb3_does_and_load_finds_it(tmp_path):
    model = RecurrentPPO(None, observation_space=BOX, action_space=TWO)
    assert model.save(tmp_path / "model") == tmp_path / "model.zip"
    assert RecurrentPPO.load(tmp_path / "model").observation_space == BOX
    assert model.save(tmp_path / "model.pt") == tmp_path / "model.pt"
    assert RecurrentPPO.load(str(tmp_path / "model.pt")).action_space == TWO


# --- load's SB3 arguments ----------------------------------------------------------------


def saved_model(tmp_path):
    model = RecurrentPPO("MlpLstmPolicy", "CartPole-v1", n_envs=2, batch_size=16, **TINY)
    model.learn(16)
    return model, model.save(tmp_path / "model")


def test_rl_zoo_enjoys_custom_objects_replace_nothing_with_a_warning(tmp_path):
    # rl_zoo3's enjoy.py loads every model with these (SB3 pickles its schedules as functions)
    model, path = saved_model(tmp_path)
    custom_objects = {
        "learning_rate": 0.0,
        "lr_schedule": lambda _: 0.0,
        "clip_range": lambda _: 0.0,
    }
    with pytest.warns(UserWarning, match="clip_range, learning_rate, lr_schedule ignored"):
        loaded = RecurrentPPO.load(path, custom_objects=custom_objects)
    assert loaded.config == model.config
    for name, value in model.policy.state_dict().items():
        torch.testing.assert_close(loaded.policy.state_dict()[name], value)


def test_load_changes_the_settings_custom_objects_and_keywords_name(tmp_path, capsys):
    _, path = saved_model(tmp_path)
    loaded = RecurrentPPO.load(
        path, custom_objects={"n_epochs": 3}, ent_coef=0.1, print_system_info=True
    )
    assert (loaded.config.n_epochs, loaded.config.ent_coef) == (3, 0.1)
    assert "PyTorch" in capsys.readouterr().out
    with pytest.raises(ConfigError, match=r"unknown hyperparameter.*force_resett"):
        RecurrentPPO.load(path, force_resett=True)
    with pytest.raises(ConfigError, match="n_epochs"):
        RecurrentPPO.load(path, n_epochs=0)
    # SB3's names, as the constructor takes them
    loaded = RecurrentPPO.load(path, policy_kwargs={"ortho_init": False}, seed=None, verbose=1)
    assert loaded.config.ortho_init is False and loaded.config.seed != 0
    assert loaded.verbose == 1 and RecurrentPPO.load(path).verbose == 0


def test_force_reset_starts_new_episodes_where_the_saved_ones_would_continue(tmp_path):
    model = RecurrentPPO("Memory/TMaze-v0", n_envs=2, batch_size=16, **TINY)
    model.learn(16)
    path = model.save(tmp_path / "model")
    assert RecurrentPPO.load(path, env="recorded").continues_episodes
    assert RecurrentPPO.load(path, env="recorded", force_reset=False).continues_episodes
    assert not RecurrentPPO.load(path, env="recorded", force_reset=True).continues_episodes
