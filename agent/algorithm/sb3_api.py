"""Stable-Baselines3's side of `RecurrentPPO`: its constructor arguments and the methods SB3's
users and callbacks call on a model (`get_env`, `logger`, `set_env`, ...).

`resolve_config` turns a `RecurrentPPO(...)` call, ours or SB3's, into a `PPOConfig`;
`SB3Methods` is the part of `RecurrentPPO` that only SB3's conventions need. Where this agent
differs on purpose, README's "Coming from Stable-Baselines3" says why.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gymnasium.vector import VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from agent.algorithm import sb3_callbacks, sb3_envs, sb3_names
from agent.config import ConfigError, PPOConfig
from agent.environment.masks import MaskSource
from agent.environment.vec_env import EnvError, find_layer

CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(PPOConfig))
KEYWORDS = frozenset(
    {"env_kwargs", "wrappers", "tensorboard_log", "observation_space", "action_space"}
    | {"policy_kwargs", "verbose", *sb3_names.CONSTRUCTOR}
)
"""The keyword arguments of `RecurrentPPO` besides the config's fields."""


def resolve_config(
    policy_name: str | None,
    env: Any,
    config: PPOConfig | None,
    hyperparameters: dict[str, Any],
    policy_kwargs: dict[str, Any] | None,
) -> tuple[PPOConfig, VecNormalize | None]:
    """The config `RecurrentPPO(...)` asks for (not yet validated), and the `VecNormalize` of an
    SB3 env: SB3's arguments translated, the number of copies of an env object, a `VecNormalize`'s
    settings. Raises `ConfigError` for an unknown argument (with the closest name) and `EnvError`
    for an env that cannot be used; makes nothing."""
    settings = sb3_names.constructor_settings(hyperparameters)
    if policy_kwargs is not None:
        network = sb3_names.policy_kwargs_settings(policy_kwargs)
        twice = sorted(network.keys() & settings.keys())
        if twice:
            raise ConfigError(
                f"{', '.join(twice)} given both as an argument and in policy_kwargs: give it once"
            )
        settings.update(network)
    if policy_name is not None:
        settings = {**sb3_names.policy_settings(policy_name), **settings}
    if settings.keys() - CONFIG_FIELDS:
        raise sb3_names.unknown_argument_error(
            settings.keys() - CONFIG_FIELDS, CONFIG_FIELDS | KEYWORDS
        )
    batch_given = config is not None or "batch_size" in settings
    config = dataclasses.replace(config or PPOConfig(), **settings)
    vec_normalize = None
    if isinstance(env, VectorEnv) or sb3_envs.is_env_object(env):
        config.n_envs = env.num_envs if isinstance(env, VectorEnv) else sb3_envs.num_envs(env)
        if isinstance(env, VecEnv):
            _, vec_normalize = sb3_envs.unwrap(env)  # refuses what cannot be stepped
        if vec_normalize is not None:
            normalize = sb3_envs.normalize_settings(vec_normalize, settings)
            config = dataclasses.replace(config, **normalize)
    elif env is not None and not isinstance(env, str):
        raise EnvError(
            f"env must be a Gymnasium id, env or vector env, or an SB3 VecEnv; got "
            f"{type(env).__name__}"
        )
    if policy_name is not None or (
        env is not None and not isinstance(env, str) and not batch_given
    ):
        # SB3's meaning of a batch larger than the rollout (and, for an env object that
        # fixes n_envs, of our default): one minibatch of the whole rollout.
        config.batch_size = sb3_names.whole_rollout_batch(
            config.batch_size, config.n_envs * config.n_steps
        )
    return config, vec_normalize


class SB3Methods:
    """SB3's methods of `RecurrentPPO` (a mixin: it reads the model's `config`, `env`,
    `env_spec`, normalisers and TensorBoard settings)."""

    config: PPOConfig
    env: VectorEnv | None
    env_spec: dict[str, Any]
    verbose: int
    tensorboard_log: Path | None
    _sb3_form: bool
    _sb3_env: VecEnv | None
    _owns_sb3_env: bool
    _vec_normalize: VecNormalize | None
    _tensorboard_dir: Path | None
    _logger: Logger | None
    _writer: Any

    def _start_tensorboard_run(self, tb_log_name: str | None, reset_num_timesteps: bool) -> None:
        """SB3's TensorBoard folders: with `tb_log_name` (in SB3's form, `RecurrentPPO` by
        default), each `learn` writes into `<tensorboard_log>/<tb_log_name>_<N>`, a new N unless
        it continues (`reset_num_timesteps=False`). Otherwise into `tensorboard_log` itself."""
        name = tb_log_name or ("RecurrentPPO" if self._sb3_form else None)
        if self.tensorboard_log is None or name is None:
            return
        from stable_baselines3.common.utils import get_latest_run_id

        latest = get_latest_run_id(str(self.tensorboard_log), name)
        run = latest if not reset_num_timesteps and latest > 0 else latest + 1
        folder = self.tensorboard_log / f"{name}_{run}"
        if folder != self._tensorboard_dir:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
            self._tensorboard_dir = folder
            self.tensorboard_writer()  # the folder exists from now on: the next learn numbers on

    @property
    def n_envs(self) -> int:
        """Environment copies stepped in parallel (`config.n_envs`)."""
        return self.config.n_envs

    @property
    def logger(self) -> Logger:
        """SB3's `Logger`: what SB3 callbacks `record` reaches TensorBoard at `dump`; with
        `verbose=1` it also prints SB3's table every `log_interval` iterations."""
        if self._logger is None:
            self._logger = sb3_callbacks.make_logger(self, self.verbose)
        return self._logger

    def set_logger(self, logger: Logger) -> None:
        """Use SB3's `logger` (its outputs) for the tables and what callbacks record; TensorBoard
        still gets every iteration's statistics from `tensorboard_log`."""
        self._logger = logger

    def get_env(self) -> VecEnv | None:
        """The env as an SB3 `VecEnv`, for SB3's callbacks and `evaluate_policy`: the `VecEnv`
        given (inside its `VecNormalize`: the model normalises, `get_vec_normalize_env`), a
        `DummyVecEnv` over the `gym.Env` given, or else one new copy of the recorded env (its
        id, kwargs and wrappers; made on the first call, closed by `close`): the training env
        autoresets as Gymnasium does, which SB3's `VecEnv` cannot express. None without env."""
        if self._sb3_env is None and self.env is not None:
            env_id = self.env_spec.get("id")
            if not env_id:
                raise EnvError(
                    "get_env() makes a copy of the training env from its id, and this env was "
                    "given without one: give an env id, a gym.Env or an SB3 DummyVecEnv, or "
                    "evaluate on an env of your own"
                )
            self._sb3_env = sb3_envs.evaluation_copy(
                env_id, self.env_spec.get("kwargs") or {}, self.env_spec.get("wrappers") or []
            )
            self._owns_sb3_env = True
        return self._sb3_env

    def get_vec_normalize_env(self) -> VecNormalize | None:
        """The `VecNormalize` given as the env, whose running statistics the model's normalisers
        share (so `VecNormalize.save` writes what the model uses); None otherwise."""
        return self._vec_normalize

    def set_env(self, env: Any, force_reset: bool = True) -> None:
        """Train on `env` from now on, as SB3's `set_env`: an env id (made with `n_envs` copies,
        no kwargs) or an env object of the same spaces and number of copies (`EnvError`
        otherwise). Episodes start afresh at the next `learn` (`force_reset`). The previous env
        is left open, as in SB3."""
        vec_normalize = None
        if isinstance(env, VecEnv):
            _, vec_normalize = sb3_envs.unwrap(env)
        if vec_normalize is not None:
            cfg = self.config
            sb3_envs.normalize_settings(
                vec_normalize,
                {"normalize_obs": cfg.normalize_obs, "normalize_reward": cfg.normalize_reward},
            )
        if sb3_envs.is_env_object(env) and sb3_envs.num_envs(env) != self.config.n_envs:
            raise EnvError(
                f"set_env: the env has {sb3_envs.num_envs(env)} copies and the model "
                f"{self.config.n_envs}; load the model with the new env instead"
            )
        vector, spec, sb3_env = self._open_env(env, None, ())
        found = (vector.single_observation_space, vector.single_action_space, vector.num_envs)
        wanted = (self.observation_space, self.action_space, self.config.n_envs)
        if found != wanted:
            if isinstance(env, str):
                vector.close()
            raise EnvError(f"set_env: the env's (spaces, n_envs) are {found}, the model's {wanted}")
        if vec_normalize is not None:
            sb3_envs.share_statistics(
                vec_normalize, self.obs_normalizer, self.reward_normalizer, self.config.gamma
            )
        if self._owns_sb3_env:
            self._sb3_env.close()
        self.env, self.env_spec, self._sb3_env = vector, spec, sb3_env
        self._mask_source = MaskSource(
            vector, self.action_space, spec.get("id"), self.config.observe_action_mask
        )
        self._owns_sb3_env, self._vec_normalize = False, vec_normalize
        self.episode_statistics = find_layer(vector, RecordEpisodeStatistics)
        if force_reset:
            self._last_obs = None
