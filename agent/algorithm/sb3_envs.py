"""Stable-Baselines3's envs as this agent steps them, and SB3's view of this agent's envs.

The agent steps a Gymnasium vector env with NEXT_STEP autoreset (an episode's last step returns
its final observation; the next step only resets). SB3's `VecEnv` resets within the step that
ends an episode and hides the final observation in `infos`, which loses the step the agent
needs to bootstrap a truncated episode from. So an SB3 env is not stepped through its `VecEnv`
API: a `DummyVecEnv`'s own envs run in a Gymnasium `SyncVectorEnv`, a single `gym.Env` in one of
its own, and a `VecNormalize`'s statistics and settings become the model's normalisers, which
then share (and update) its running means. What SB3's callbacks and `evaluate_policy` get from
`model.get_env()` is `sb3_view` (the `VecEnv` the user gave, or a `DummyVecEnv` over the
`gym.Env`), or else `evaluation_copy`: a fresh `DummyVecEnv` of the recorded env.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator
from gymnasium.vector import SyncVectorEnv, VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecEnvWrapper,
    VecMonitor,
    VecNormalize,
)

from agent.algorithm.normalization import ObsNormalizer, RewardNormalizer
from agent.config import ConfigError
from agent.environment.vec_env import EnvError, copy_wrappers, make_single_env

STATS_KEY = "rollout_episode"
"""The info key of the statistics the agent records on an SB3 env, whose envs may already
report `episode` through SB3's `Monitor` (Gymnasium refuses to write over it)."""

PER_ENV_WRAPPER = {
    "VecFrameStack": "wrap each env in gymnasium.wrappers.FrameStackObservation(env, "
    "stack_size=N) (with an env id: wrappers=[{'gymnasium.wrappers:FrameStackObservation': "
    "{'stack_size': N}}]), or leave the memory to the LSTM",
    "VecTransposeImage": "remove it: the CNN reads channel-last and channel-first images",
    "VecVideoRecorder": "wrap each env in gymnasium.wrappers.RecordVideo instead",
    "VecExtractDictObs": "wrap each env in gymnasium.wrappers.TransformObservation "
    "(lambda obs: obs[key]) instead",
    "VecCheckNan": "remove it: a NaN loss or gradient stops training with NumericalError",
}
"""What to write instead of an SB3 vector-env wrapper, by its class name."""
OTHER_WRAPPER = "apply the Gymnasium wrapper that does the same to each env instead"


class Adapted(NamedTuple):
    """An env object as the agent uses it."""

    env: VectorEnv
    """What the agent steps (NEXT_STEP autoreset, episode statistics recorded)."""
    sb3_view: VecEnv
    """What `model.get_env()` returns: the user's `VecEnv` (inside its `VecNormalize`, since the
    model normalises) or a `DummyVecEnv` over the user's `gym.Env`."""
    vec_normalize: VecNormalize | None
    """The user's `VecNormalize`, whose statistics the model's normalisers take over."""
    env_id: str | None
    """The registered id of the envs, when they were made by `gym.make`."""


def is_env_object(env: Any) -> bool:
    """A single Gymnasium env or an SB3 `VecEnv` (what `adapt` takes)."""
    return isinstance(env, gym.Env | VecEnv)


def num_envs(env: gym.Env | VecEnv) -> int:
    """How many copies an env object steps (1 for a `gym.Env`)."""
    return env.num_envs if isinstance(env, VecEnv) else 1


def unwrap(venv: VecEnv) -> tuple[DummyVecEnv, VecNormalize | None]:
    """The `DummyVecEnv` inside `venv`, and its `VecNormalize` (outermost) if any. Raises
    `EnvError` with the reason and what to do instead for anything else: a `SubprocVecEnv`,
    and vector-env wrappers other than `VecNormalize` and `VecMonitor`."""
    vec_normalize = None
    layer = venv
    while isinstance(layer, VecEnvWrapper):
        name = type(layer).__name__
        if isinstance(layer, VecNormalize):
            if layer is not venv:
                raise EnvError(
                    "VecNormalize must be the outermost vector-env wrapper (a wrapper outside it "
                    "would see normalised rewards)"
                )
            vec_normalize = layer
        elif not isinstance(layer, VecMonitor):  # episode statistics are always recorded
            instead = PER_ENV_WRAPPER.get(name, OTHER_WRAPPER)
            raise EnvError(
                f"{name}: vector-env wrappers are not applied here (the agent steps the envs "
                f"inside them, with Gymnasium's autoreset); {instead}"
            )
        layer = layer.venv
    if isinstance(layer, SubprocVecEnv):
        raise EnvError(
            "SubprocVecEnv: its envs live in worker processes, which this agent cannot step with "
            "Gymnasium's autoreset; give the env id with vec_env='async' (a process per copy), "
            "a gymnasium.vector.AsyncVectorEnv of the same env factories, or a DummyVecEnv"
        )
    if not isinstance(layer, DummyVecEnv):
        raise EnvError(
            f"{type(layer).__name__}: of SB3's vector envs only DummyVecEnv (with VecNormalize, "
            "VecMonitor) is read here; give a Gymnasium vector env or an env id instead"
        )
    return layer, vec_normalize


def adapt(env: gym.Env | VecEnv) -> Adapted:
    """The vector env the agent steps for a `gym.Env` (wrapped in SB3's `Monitor`, as SB3 does)
    or an SB3 `VecEnv` (its `DummyVecEnv`'s envs, which it shares)."""
    vec_normalize = None
    if isinstance(env, VecEnv):
        dummy, vec_normalize = unwrap(env)
        envs = list(dummy.envs)
        view = env.venv if vec_normalize is not None else env
    else:
        if not is_wrapped(env, Monitor):
            env = Monitor(env)
        envs = [env]
        view = DummyVecEnv([lambda: env])
    vector = SyncVectorEnv([lambda e=e: e for e in envs])
    spec = envs[0].spec
    env_id = spec.id if spec is not None else None
    return Adapted(RecordEpisodeStatistics(vector, 100, STATS_KEY), view, vec_normalize, env_id)


def normalize_settings(vec_normalize: VecNormalize, settings: dict[str, Any]) -> dict[str, bool]:
    """`normalize_obs` and `normalize_reward` as `vec_normalize` sets them; `ConfigError` when
    `settings` (the caller's arguments) say otherwise or when its statistics are frozen."""
    if not vec_normalize.training:
        raise ConfigError(
            "VecNormalize(training=False) freezes its statistics, and this model updates them "
            "while it learns (never in predict): set training=True"
        )
    out = {"normalize_obs": vec_normalize.norm_obs, "normalize_reward": vec_normalize.norm_reward}
    for key, value in out.items():
        if key in settings and settings[key] != value:
            raise ConfigError(
                f"{key}={settings[key]} contradicts the VecNormalize given (norm_"
                f"{key.removeprefix('normalize_')}={value}): remove {key}"
            )
    return out


def share_statistics(
    vec_normalize: VecNormalize,
    obs_normalizer: ObsNormalizer | None,
    reward_normalizer: RewardNormalizer | None,
    gamma: float,
) -> None:
    """Make the model's normalisers use `vec_normalize`'s running statistics (the same objects,
    so that both go on agreeing: `VecNormalize.save` and `sync_envs_normalization` see what the
    model learns with). Raises `ConfigError` where its settings differ from the normalisers'."""
    checks = []
    if obs_normalizer is not None:
        if not hasattr(vec_normalize.obs_rms, "mean"):
            raise ConfigError("VecNormalize of Dict observations: normalize_obs reads a Box only")
        checks += [
            ("clip_obs", vec_normalize.clip_obs, obs_normalizer.clip),
            ("epsilon", vec_normalize.epsilon, obs_normalizer.epsilon),
        ]
    if reward_normalizer is not None:
        checks += [
            ("clip_reward", vec_normalize.clip_reward, reward_normalizer.clip),
            ("epsilon", vec_normalize.epsilon, reward_normalizer.epsilon),
            ("gamma", vec_normalize.gamma, gamma),
        ]
    for name, theirs, ours in checks:
        if theirs != ours:
            setting = "the model's gamma" if name == "gamma" else "this agent's normaliser"
            raise ConfigError(
                f"VecNormalize({name}={theirs}) differs from {setting} ({ours}): give "
                f"VecNormalize({name}={ours})" + (f" or gamma={theirs}" if name == "gamma" else "")
            )
    if obs_normalizer is not None:
        obs_normalizer.rms = vec_normalize.obs_rms
    if reward_normalizer is not None:
        reward_normalizer.rms = vec_normalize.ret_rms
        reward_normalizer.returns = vec_normalize.returns.copy()


def evaluation_copy(env_id: str, env_kwargs: dict[str, Any], wrappers: Sequence[Any]) -> VecEnv:
    """A `DummyVecEnv` of one new copy of the env (its kwargs, its wrappers, SB3's `Monitor`),
    rendering `rgb_array` frames when the env offers them, as SB3 makes an env from its id."""
    wrapper_fns = copy_wrappers(wrappers)
    kwargs = dict(env_kwargs)
    spec = gym.spec(env_id.rpartition(":")[2])
    creator = spec.entry_point
    if isinstance(creator, str):
        creator = load_env_creator(creator)
    if "rgb_array" in getattr(creator, "metadata", {}).get("render_modes", []):
        kwargs.setdefault("render_mode", "rgb_array")
    return DummyVecEnv([lambda: Monitor(make_single_env(env_id, kwargs, wrapper_fns))])
