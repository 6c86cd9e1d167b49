"""RecurrentPPO: the training loop (collect -> advantages -> update -> log), predict, save, load."""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecEnv

from agent.algorithm import checkpoint, sb3_callbacks, sb3_envs, sb3_names
from agent.algorithm.buffer import RolloutBuffer
from agent.algorithm.gae import compute_gae
from agent.algorithm.gradient_step import TwoThreadUpdate, losses
from agent.algorithm.losses import explained_variance
from agent.algorithm.lr_schedule import adapt_rate, linear_rate
from agent.algorithm.normalization import ObsNormalizer, RewardNormalizer
from agent.algorithm.sb3_api import SB3Methods, resolve_config
from agent.config import ConfigError, PPOConfig
from agent.environment.env_state import get_env_state, set_env_state
from agent.environment.masks import (
    MaskSource,
    check_masks,
    policy_observation_space,
    split_observation,
)
from agent.environment.vec_env import EnvError, check_autoreset, find_layer, make_vec_env
from agent.networks.encoders import is_image_space
from agent.networks.fast_path import FusedPolicy, Parameters
from agent.networks.observations import Obs, batch_size_of, to_tensor, tree_map
from agent.networks.policy import RecurrentActorCritic
from agent.networks.recurrent import reset_state

Callback = Callable[["RecurrentPPO"], bool | None]
"""Called after every update; returning False stops `learn`."""


class StopTraining(Exception):
    """Raised inside an iteration when `RecurrentPPO.stop_check` asks to stop; `learn` then
    puts the model back as it was before the iteration and returns."""


class CallbackStop(Exception):
    """An SB3 callback's `on_step` returned False: `learn` returns at once, without training on
    the partial rollout (as in SB3; its steps stay counted)."""


class NumericalError(RuntimeError):
    """A loss or gradient became NaN or infinite; the parameters were left as they were."""


def resolve_device(device: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cuda` without a GPU is a `ConfigError` (one
    line: the device may come from a checkpoint, which loads where it was trained)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} was asked for, or recorded by the checkpoint being loaded, but "
            "CUDA is not available here: use --device cpu (device='cpu' in RecurrentPPO.load)"
        )
    return torch.device(device)


def record_successes(infos: dict[str, Any], successes: deque[float]) -> None:
    """Append the `success` (or `is_success`) that envs report on an episode's final step."""
    for key in ("success", "is_success"):
        if f"_{key}" in infos:
            successes.extend(np.asarray(infos[key])[infos[f"_{key}"]].astype(float).tolist())


class RecurrentPPO(SB3Methods):
    """PPO with an LSTM (or GRU) actor-critic, trained on whole sequences.

    Called our way, `RecurrentPPO(env, config, **hyperparameters)`, or SB3's way,
    `RecurrentPPO(policy, env, **hyperparameters)` with sb3-contrib's policy name first
    (`MlpLstmPolicy`, `CnnLstmPolicy`, `MultiInputLstmPolicy`: the encoder is chosen from the
    observation space, so the name only has to fit it), SB3's `policy_kwargs` and constructor
    arguments (`agent.algorithm.sb3_names` translates them; README, "Coming from
    Stable-Baselines3").

    Args:
        policy: a policy name (SB3's form: the env follows), or else the env (our form).
        env: a Gymnasium id (made with `config.n_envs` copies), a Gymnasium `VectorEnv` (with
            NEXT_STEP autoreset, Gymnasium's default), a `gym.Env` (one copy), an SB3
            `DummyVecEnv` (in a `VecNormalize`, whose statistics the model takes over), or None
            for a model that only predicts. In our form the config may come second instead.
        config: hyperparameters; keyword arguments override its fields (`n_steps=32`).
        env_kwargs: keyword arguments of `gym.make` when `env` is an id.
        wrappers: `module:Callable` wrappers applied to every single env when `env` is an id.
        tensorboard_log: folder for TensorBoard event files, or None. In SB3's form each `learn`
            writes into a new `RecurrentPPO_<N>` folder inside it, as SB3 does; in ours, into
            the folder itself (a run folder's `tb/`).
        observation_space, action_space: the spaces of a model without env.
        policy_kwargs: SB3's network arguments (`net_arch`, `lstm_hidden_size`, ...).
        verbose: 0 silent; 1 prints the device, then SB3's table of statistics each iteration.

    Raises `ConfigError` (one line) for an unknown or invalid argument and `EnvError` for an env
    that cannot be used; the config and device are checked before any env is made.
    """

    def __init__(
        self,
        policy: Any = None,
        env: Any = None,
        config: PPOConfig | None = None,
        *,
        env_kwargs: dict[str, Any] | None = None,
        wrappers: Sequence[str] = (),
        tensorboard_log: str | Path | None = None,
        observation_space: spaces.Space | None = None,
        action_space: spaces.Space | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        **hyperparameters: Any,
    ) -> None:
        policy_name, env, config = sb3_names.call_form(policy, env, config)
        config, vec_normalize = resolve_config(
            policy_name, env, config, hyperparameters, policy_kwargs
        )
        self.config = config.validate()
        # Before any env is made: a device that is not there leaves nothing open.
        self.device = resolve_device(config.device)
        self._vec_normalize = vec_normalize
        made_here = isinstance(env, str)
        env, self.env_spec, self._sb3_env = self._open_env(env, env_kwargs, wrappers)
        self._owns_sb3_env = False
        """True when `_sb3_env` is `get_env`'s copy, closed by `close`."""
        self.env: VectorEnv | None = env
        self.observation_space = env.single_observation_space if env else observation_space
        self.action_space = env.single_action_space if env else action_space
        if self.observation_space is None or self.action_space is None:
            raise ValueError("give an env, or both observation_space and action_space")
        if policy_name is not None:
            try:
                sb3_names.check_policy(policy_name, self.observation_space)
            except ConfigError:
                if made_here:
                    env.close()
                raise
        self.verbose = verbose
        if verbose >= 1:
            print(f"Using {self.device} device")
        torch.manual_seed(config.seed)
        # A Dict observation's `action_mask` entry is a mask, not an input (agent.environment.masks):
        # the policy is built without it; `observation_space` (saved with checkpoints) keeps it.
        self.policy_observation_space = (
            self.observation_space
            if config.observe_action_mask
            else policy_observation_space(self.observation_space)
        )
        self.policy = RecurrentActorCritic(self.policy_observation_space, self.action_space, config)
        self.policy.to(self.device)
        # The fast path, on a CPU: one flat tensor for all parameters and another for all
        # gradients, so that the clip and the fused Adam step work on one tensor instead of one
        # per layer. The reference path keeps PyTorch's defaults throughout.
        fast = config.fast_path
        self.params = Parameters(self.policy, flat=fast and self.device.type == "cpu")
        self.optimizer = torch.optim.Adam(
            self.params.tensors,
            lr=config.learning_rate,
            eps=config.adam_eps,
            fused=True if fast else None,
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.obs_normalizer = self._make_obs_normalizer()
        self.reward_normalizer = (
            RewardNormalizer(config.n_envs, config.gamma) if config.normalize_reward else None
        )
        if vec_normalize is not None:
            sb3_envs.share_statistics(
                vec_normalize, self.obs_normalizer, self.reward_normalizer, config.gamma
            )
        self.num_timesteps = 0
        self.total_timesteps = 0
        self.n_updates = 0
        self.adaptive_lr = config.learning_rate
        """The step size of an `adaptive` schedule, set after every update from its KL."""
        self.episode_statistics: RecordEpisodeStatistics | None = (
            find_layer(env, RecordEpisodeStatistics) if env is not None else None
        )
        """The env's `RecordEpisodeStatistics`: its `return_queue` and `length_queue` hold the
        returns and lengths of the last 100 finished episodes (what `rollout/` logs)."""
        self.successes: deque[float] = deque(maxlen=100)
        """Whether each of the last 100 finished episodes succeeded, where the env says."""
        self.logs: dict[str, float] = {}
        self.tensorboard_log = Path(tensorboard_log) if tensorboard_log else None
        self._writer: Any = None
        self._last_obs: Any = None
        self._last_mask: np.ndarray | None = None
        """The action masks the env gave with `_last_obs` (None: it gives none)."""
        self._mask_source = (
            MaskSource(env, self.action_space, self.env_spec.get("id"), config.observe_action_mask)
            if env
            else None
        )
        self.stop_check: Callable[[], bool] | None = None
        """Polled at every rollout step and minibatch; True abandons the iteration in progress
        (the model returns to where it began) and ends `learn`. `train.py` sets it on Ctrl-C."""
        self._sb3_form = policy_name is not None
        self._tensorboard_dir: Path | None = None
        """SB3's form: the `RecurrentPPO_<N>` folder of the current `learn` in `tensorboard_log`."""
        self._logger: Logger | None = None
        self._log_interval = 1
        self._sb3_callback: BaseCallback | None = None
        """The SB3 callback of the `learn` in progress: called at every rollout step."""
        self._collecting = False
        self._two_threads = TwoThreadUpdate()

    def _open_env(
        self, env: Any, env_kwargs: dict[str, Any] | None, wrappers: Sequence[str]
    ) -> tuple[VectorEnv | None, dict[str, Any], VecEnv | None]:
        """(the vector env to train on, its spec as recorded in checkpoints, the SB3 `VecEnv`
        that `get_env` returns if any) for an env id (made with `config.n_envs` copies), a
        Gymnasium vector env, a `gym.Env` or an SB3 `VecEnv`, or None."""
        spec: dict[str, Any] = {"id": None, "kwargs": {}, "wrappers": []}
        sb3_env = None
        if isinstance(env, str):
            spec = {"id": env, "kwargs": dict(env_kwargs or {}), "wrappers": list(wrappers)}
            cfg = self.config
            env = make_vec_env(env, cfg.n_envs, env_kwargs, wrappers, cfg.vec_env)
        elif isinstance(env, VectorEnv):
            check_autoreset(env)
            if find_layer(env, RecordEpisodeStatistics) is None:
                env = RecordEpisodeStatistics(env, buffer_length=100)
            env_spec = getattr(env, "spec", None)
            if env_spec is not None:
                spec["id"] = env_spec.id
        elif env is not None:
            adapted = sb3_envs.adapt(env)
            env, sb3_env, spec["id"] = adapted.env, adapted.sb3_view, adapted.env_id
        return env, spec, sb3_env

    @property
    def continues_episodes(self) -> bool:
        """True when the next `learn(reset_num_timesteps=False)` goes on with episodes in
        progress (carried from an earlier `learn`, or restored with a checkpoint's env state);
        False when it starts fresh episodes (a new model, or one loaded from a checkpoint of
        an env whose state cannot be saved as data)."""
        return self._last_obs is not None

    # ------------------------------------------------------------------------------- set-up ---

    def _make_obs_normalizer(self) -> ObsNormalizer | None:
        if not self.config.normalize_obs:
            return None
        space = self.observation_space
        if not isinstance(space, spaces.Box) or is_image_space(space):
            raise ValueError("normalize_obs supports non-image Box observation spaces only")
        return ObsNormalizer(tuple(space.shape))

    def _obs_to_tensor(self, obs: Any, update_stats: bool | np.ndarray) -> Obs:
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer(obs, update=update_stats)
        return to_tensor(obs, self.device)

    def _learning_rate(self) -> float:
        """The step size of the next update, as `config.lr_schedule` says."""
        cfg = self.config
        if cfg.lr_schedule == "linear":
            return linear_rate(cfg.learning_rate, self.num_timesteps, self.total_timesteps)
        if cfg.lr_schedule == "adaptive":
            return self.adaptive_lr
        return cfg.learning_rate

    def _clip_range(self) -> float:
        """The policy clip range of the next update, as `config.clip_schedule` says."""
        cfg = self.config
        if cfg.clip_schedule == "linear":
            return linear_rate(cfg.clip_range, self.num_timesteps, self.total_timesteps)
        return cfg.clip_range

    # ----------------------------------------------------------------------------- training ---

    def learn(
        self,
        total_timesteps: int,
        callback: Any = None,
        log_interval: int = 1,
        tb_log_name: str | None = None,
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> RecurrentPPO:
        """Train for `total_timesteps` environment steps (more, when `reset_num_timesteps` is
        False: SB3's meaning). Each iteration: collect a rollout, compute advantages, update,
        log, call `callback`. An iteration that raises (or that `stop_check` stops) is undone
        first: the model (and the envs, where their state can be saved) is left where it
        began, never half-way through a rollout or an update, so that a checkpoint saved then
        is consistent.

        `callback`: a function of the model, called after every update (False stops); or SB3's
        callbacks (`BaseCallback`, a list of them, a function of `(locals, globals)`), called
        as SB3 calls them (`agent.algorithm.sb3_callbacks`). `log_interval`: iterations between
        two of SB3's tables (`verbose=1`). `tb_log_name`: the TensorBoard folder's name in
        `tensorboard_log` (SB3's form: `RecurrentPPO`; numbered per `learn`, as SB3 does)."""
        if self.env is None:
            raise ValueError("this model has no env to learn from")
        after_update, sb3_callback = sb3_callbacks.split_callback(callback)
        if reset_num_timesteps:
            self.num_timesteps = 0
            self.total_timesteps = total_timesteps
        else:
            self.total_timesteps = self.num_timesteps + total_timesteps
        if self._last_obs is None or reset_num_timesteps:
            self._start_episodes()
        self._start_tensorboard_run(tb_log_name, reset_num_timesteps)
        self._log_interval = log_interval
        if self.verbose >= 1:
            _ = self.logger  # SB3's table from the first iteration on
        if sb3_callback is not None:
            total_timesteps = self.total_timesteps  # SB3's local: the count to reach
            sb3_callback.init_callback(self)
            sb3_callback.on_training_start(locals(), globals())
        self._sb3_callback = sb3_callback
        bar = _progress_bar(self.total_timesteps, self.num_timesteps) if progress_bar else None
        try:
            # On a CPU with two torch threads or more: agent/algorithm/gradient_step.py.
            with self._two_threads.during_learn(self.policy, self.config, self.device):
                self._iterations(after_update, bar)
        finally:
            self._sb3_callback = None
            if bar is not None:
                bar.close()
            if self._writer is not None:
                self._writer.flush()
        if sb3_callback is not None:
            sb3_callback.on_training_end()
        return self

    def _iterations(self, after_update: Callable[[Any], Any] | None, bar: Any) -> None:
        """`learn`'s iterations until `total_timesteps`, a stop or a callback's False."""
        iteration = 0
        while self.num_timesteps < self.total_timesteps:
            # An iteration can end half-way (a stop, an env that raises, a NaN): keep a copy
            # of where it started, to put back (a few milliseconds for networks this size).
            before = copy.deepcopy(self.training_state())
            start = time.perf_counter()
            try:
                buffer = self.collect_rollout()
                collect_time = time.perf_counter() - start
                self.compute_advantages(buffer)
                self.logs = self.train(buffer)
                # Between an update and the next rollout: each rollout and its update see
                # the same input scale (a uint8 grid's channel ranges, agent.networks.encoders).
                self.policy.encoder.update_range(buffer.observations)
            except CallbackStop:
                return
            except StopTraining:
                self.load_training_state(before)
                return
            except Exception:
                self.load_training_state(before)
                raise
            iteration += 1
            self._log_iteration(start, collect_time, iteration)
            if bar is not None:
                _update_bar(bar, self.num_timesteps, self.logs)
            if after_update is not None and after_update(self) is False:
                return

    def _check_stop(self) -> None:
        if self.stop_check is not None and self.stop_check():
            raise StopTraining

    def _start_episodes(self) -> None:
        """Reset all envs (seeded) and the recurrent state; the first step starts episodes."""
        obs, infos = self.env.reset(seed=self.config.seed + self.num_timesteps)
        obs, self._last_mask = self._mask_source.split(obs, infos, self.num_timesteps)
        self._last_obs = obs
        self.policy.encoder.update_range(self._obs_to_tensor(obs, update_stats=False))
        self._state = self.policy.initial_state(self.config.n_envs, self.device)
        self._episode_start = torch.ones(self.config.n_envs, dtype=torch.bool, device=self.device)
        self._reset_step = torch.zeros_like(self._episode_start)

    def collect_rollout(self) -> RolloutBuffer:
        """Step the envs `n_steps` times and store everything, with the values to bootstrap from.

        Gymnasium's NEXT_STEP autoreset: after a step that ends an episode, the next step only
        resets the env (the action is ignored, reward 0). That reset step is stored with
        valid=False: it is never learned from, but the value computed on its observation (the
        final observation of the ended episode, under the carried memory) is what a truncated
        episode bootstraps from. The recurrent state is zeroed before the first step of each
        episode.
        """
        cfg, env = self.config, self.env
        buffer = RolloutBuffer(
            cfg.n_steps, cfg.n_envs, self.policy_observation_space, self._state, self.device,
            cfg.sequence_len, self.policy.encoder.frame_leaves(),
        )  # fmt: skip
        self.policy.eval()
        # The parameters stay fixed during a rollout: the fast path fuses them once for it.
        actor = FusedPolicy(self.policy) if cfg.fast_path else self.policy
        # The flags live in numpy during the rollout: most steps start no episode, and then the
        # state needs no reset.
        starts = self._episode_start.cpu().numpy().copy()
        resets = self._reset_step.cpu().numpy().copy()
        # On CUDA, a step waits for the GPU twice: the observations' upload (a copy from pageable
        # memory waits for the work queued before it) and the actions' download for the env.
        # Nothing else waits: the flags, rewards and statistics stay in numpy, `buffer.add`
        # copies on the device, `torch.multinomial` checks its input asynchronously, and the
        # reset mask goes up from pinned memory without blocking. tests/test_device.py counts.
        pinned = self.device.type == "cuda"
        hook = self._sb3_callback  # None (nothing to call per step) unless an SB3 callback
        if hook is not None:
            hook.on_rollout_start()
        self._collecting = True
        try:
            for t in range(cfg.n_steps):
                self._check_stop()
                # A reset step's observation is the final one of the episode that ended, which
                # SB3's VecNormalize leaves out of its statistics: so do we.
                obs = self._obs_to_tensor(self._last_obs, update_stats=~resets)
                state = self._state
                if starts.any():
                    mask = torch.as_tensor(starts)
                    mask = mask.pin_memory() if pinned else mask
                    state = reset_state(state, mask.to(self.device, non_blocking=True))
                masks = self._last_mask
                step = actor.step(
                    obs,
                    state,
                    mask=None if masks is None else torch.as_tensor(masks, device=self.device),
                )
                env_actions = self.policy.action_head.to_env(step.actions.cpu().numpy())
                # Stored before the env steps, so that the device copies overlap with the env.
                buffer.add(
                    t, obs, state, starts, ~resets, step.actions, step.log_prob, step.values, masks
                )
                next_obs, rewards, terminated, truncated, infos = env.step(env_actions)
                # The next step only resets the copies whose episode ended: any action will do.
                next_obs, self._last_mask = self._mask_source.split(
                    next_obs, infos, self.num_timesteps + cfg.n_envs, terminated | truncated
                )
                if self.reward_normalizer is not None:
                    rewards = self.reward_normalizer(rewards, terminated | truncated)
                buffer.add_outcome(t, rewards, terminated, truncated)
                record_successes(infos, self.successes)
                starts, resets = resets, terminated | truncated  # a reset step returns a first obs
                self._state = step.state
                self._last_obs = next_obs
                self.num_timesteps += cfg.n_envs
                if hook is not None and not sb3_callbacks.on_step(hook, locals()):
                    raise CallbackStop
        finally:
            self._collecting = False
            self._episode_start = torch.as_tensor(starts, device=self.device)
            self._reset_step = torch.as_tensor(resets, device=self.device)

        last_obs = self._obs_to_tensor(self._last_obs, update_stats=False)
        buffer.finish(
            last_values=actor.value(last_obs, reset_state(self._state, self._episode_start))
        )
        if hook is not None:
            hook.update_locals({"rollout_buffer": buffer, "new_obs": self._last_obs})
            hook.on_rollout_end()
        return buffer

    def compute_advantages(self, buffer: RolloutBuffer) -> None:
        """GAE over the rollout: sets `buffer.advantages` and `buffer.returns` (zero on reset
        steps; truncation bootstraps from the stored values, termination does not)."""
        buffer.advantages, buffer.returns = compute_gae(
            buffer.rewards,
            buffer.values,
            buffer.last_values,
            buffer.terminated,
            buffer.truncated,
            buffer.valid,
            self.config.gamma,
            self.config.gae_lambda,
        )

    def train(self, buffer: RolloutBuffer) -> dict[str, float]:
        """PPO epochs over the rollout's sequences; returns the logged statistics.

        Each minibatch replays its sequences through the recurrent core in one call, each from
        the state stored at its first step; the losses are means over the real, valid steps.
        """
        cfg = self.config
        self.policy.train()
        self.params.attach()
        lr = self._learning_rate()
        clip_range = self._clip_range()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        stats: dict[str, list[torch.Tensor]] = {
            k: [] for k in ("pg", "vf", "ent", "kl", "clip", "grad")
        }
        epochs, last_loss = self._epochs(buffer, clip_range, stats)
        self.n_updates += 1
        valid = buffer.valid
        logs = {
            "train/learning_rate": lr,
            "train/explained_variance": explained_variance(
                buffer.values[valid], buffer.returns[valid]
            ),
            "train/n_updates": float(self.n_updates),
            "train/epochs": float(epochs),
            "train/clip_range": clip_range,
        }
        if last_loss is not None:  # SB3's train/loss: the total loss of the last minibatch
            logs["train/loss"] = float(last_loss)
        names = {
            "pg": "train/policy_gradient_loss",
            "vf": "train/value_loss",
            "kl": "train/approx_kl",
            "clip": "train/clip_fraction",
            "grad": "train/grad_norm",
        }
        for key, name in names.items():
            if stats[key]:
                logs[name] = float(torch.stack(stats[key]).mean())
        if cfg.lr_schedule == "adaptive" and stats["kl"]:
            self.adaptive_lr = adapt_rate(
                lr, logs["train/approx_kl"], cfg.desired_kl, cfg.learning_rate
            )
        if stats["ent"]:
            logs["train/entropy_loss"] = -float(torch.stack(stats["ent"]).mean())
        if isinstance(self.action_space, spaces.Box):
            logs["train/std"] = self.policy.action_head.log_std.detach().exp().mean().item()
        return logs

    def _epochs(
        self,
        buffer: RolloutBuffer,
        clip_range: float,
        stats: dict[str, list[torch.Tensor]],
    ) -> tuple[int, torch.Tensor | None]:
        """The update's gradient steps, their statistics appended to `stats`; returns the
        epochs run and the last minibatch's total loss (None if none was applied)."""
        cfg = self.config
        last_loss = None
        for epoch in range(cfg.n_epochs):
            for batch in buffer.minibatches(
                cfg.batch_size, self.generator, cfg.normalize_advantage
            ):
                self._check_stop()
                if batch.advantages.numel() == 0:
                    continue
                if self._two_threads.active:  # the actor's and critic's halves side by side
                    self.params.zero_grad()
                    step = self._two_threads.gradient(self.policy, batch, cfg, clip_range)
                else:
                    step = losses(self.policy, batch, cfg, clip_range)
                    if cfg.target_kl is not None and step.pg.approx_kl.item() > 1.5 * cfg.target_kl:
                        return epoch + 1, last_loss
                    self.params.zero_grad()
                    step.loss.backward()
                grad_norm = self.params.clip_grad_norm_(cfg.max_grad_norm)
                if not torch.isfinite(step.loss + grad_norm):
                    self.params.zero_grad()
                    raise NumericalError(
                        f"non-finite {'loss' if not torch.isfinite(step.loss) else 'gradient'} "
                        f"at step {self.num_timesteps} (update {self.n_updates + 1}, epoch "
                        f"{epoch + 1}): this minibatch was not applied (NaN parameters show up "
                        "as a NaN loss); likely causes: a learning rate too high, "
                        "unnormalised observations or rewards, or NaN/inf from the env"
                    )
                self.optimizer.step()
                last_loss = step.loss.detach()
                for key, value in (
                    ("pg", step.pg.loss), ("vf", step.vf), ("ent", step.entropy),
                    ("kl", step.pg.approx_kl), ("clip", step.pg.clip_fraction), ("grad", grad_norm),
                ):  # fmt: skip
                    stats[key].append(value.detach())
        return cfg.n_epochs, last_loss

    def _log_iteration(self, start: float, collect_time: float, iteration: int = 1) -> None:
        elapsed = time.perf_counter() - start
        self.logs.update(self.episode_summary())
        self.logs["time/fps"] = self.config.rollout_size / max(elapsed, 1e-9)
        self.logs["time/collect_fraction"] = collect_time / max(elapsed, 1e-9)
        self.log_scalars(self.logs)
        if self._logger is not None and iteration % max(self._log_interval, 1) == 0:
            sb3_callbacks.dump_iteration(self._logger, self.logs, self.num_timesteps, iteration)

    def episode_summary(self) -> dict[str, float]:
        """SB3's `rollout/` means over the last 100 finished episodes (none before the first)."""
        out: dict[str, float] = {}
        stats = self.episode_statistics
        if stats is not None and stats.return_queue:
            out["rollout/ep_rew_mean"] = float(np.mean(stats.return_queue))
            out["rollout/ep_len_mean"] = float(np.mean(stats.length_queue))
        if self.successes:
            out["rollout/success_rate"] = float(np.mean(self.successes))
        return out

    def log_scalars(self, scalars: dict[str, float]) -> None:
        """Write scalars to TensorBoard at the current step (no-op without `tensorboard_log`)."""
        writer = self.tensorboard_writer()
        if writer is None:
            return
        for key, value in scalars.items():
            writer.add_scalar(key, value, self.num_timesteps)

    def tensorboard_writer(self) -> Any:
        """The run's `SummaryWriter` (made on first use, with the hyperparameters as text), or
        None without `tensorboard_log`."""
        if self.tensorboard_log is None:
            return None
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self._tensorboard_dir or self.tensorboard_log))
            self._writer.add_text(
                "hyperparameters",
                "\n".join(f"    {k}: {v}" for k, v in self.config.to_dict().items()),
            )
        return self._writer

    def close(self) -> None:
        """Close the TensorBoard writer and the environments (and `get_env`'s copy)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.env is not None:
            self.env.close()
        if self._owns_sb3_env:
            self._sb3_env.close()
            self._sb3_env = None

    # ------------------------------------------------------------------------------ acting ---

    def predict(
        self,
        observation: Any,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Actions for a batch of observations (or one), with sb3-contrib's meaning of state.

        `state` is what the previous call returned (None at the start): (h, c) for an LSTM or a
        peephole LSTM, (h,) for a GRU or a minGRU, (real, imaginary parts) for an FFM, each
        [layers, B, G * H] (G = 2 unless `shared_lstm`: actor and critic units). `episode_start`
        [B] marks the observations that begin an episode; their state is reset first.
        `action_masks` [B, sum(nvec)] (or [sum(nvec)] for one observation; True: legal), as in
        sb3-contrib's `MaskablePPO`: the actions are chosen among the legal ones. A Dict
        observation's `action_mask` entry is used when `action_masks` is None. Returns (actions,
        next state).
        """
        policy_obs, from_obs = split_observation(observation)
        if not self.config.observe_action_mask:
            observation = policy_obs
        if action_masks is None:
            action_masks = from_obs
        space = self.policy_observation_space
        single = batch_size_of(observation, space) is None
        if single:
            observation = tree_map(lambda x: np.expand_dims(np.asarray(x), 0), observation)
        n = batch_size_of(observation, space) or 1
        mask = None
        if action_masks is not None:
            action_masks = np.asarray(action_masks, dtype=bool).reshape(n, -1)
            check_masks(action_masks, self.action_space, "predict's action_masks", None)
            mask = torch.as_tensor(action_masks, device=self.device)
        obs = self._obs_to_tensor(observation, update_stats=False)
        if state is None or len(state) == 0:
            memory = self.policy.initial_state(n, self.device)
        else:
            memory = torch.as_tensor(np.stack(state), dtype=torch.float32, device=self.device)
        if episode_start is not None:
            starts = torch.as_tensor(np.asarray(episode_start, dtype=bool), device=self.device)
            memory = reset_state(memory, starts)
        step = self.policy.step(obs, memory, deterministic, mask)
        env_actions = self.policy.action_head.to_env(step.actions.cpu().numpy())
        if single:
            env_actions = env_actions[0]
        return env_actions, tuple(step.state.cpu().numpy())

    # ---------------------------------------------------------------------- saving, loading ---
    # The file and its metadata are `agent.algorithm.checkpoint`'s; the state is the model's.

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write a checkpoint (atomically) with everything needed to predict and to resume;
        `extra` is JSON-able data of the caller's (train.py keeps its schedule there). A path
        without a suffix gets `.zip`, as in SB3 (`save("model")` writes `model.zip`). Returns
        the path written."""
        path = Path(path)
        if not path.suffix:
            path = path.with_name(f"{path.name}.zip")
        meta = checkpoint.metadata(
            self.config, self.env_spec, self.observation_space, self.action_space, extra
        )
        return checkpoint.save_checkpoint({**meta, **self.training_state()}, path)

    def training_state(self) -> dict[str, Any]:
        """Everything that training changes, as data: weights, optimizer, counters, random
        streams, normalisers, the device trained on and (when the env can save its state) where
        the rollout stands. `load_training_state` puts it back. The tensors may share memory
        with the model."""
        state: dict[str, Any] = {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "num_timesteps": self.num_timesteps,
            "total_timesteps": self.total_timesteps,
            "n_updates": self.n_updates,
            "adaptive_lr": self.adaptive_lr,
            "device": self.device.type,
            "torch_rng": torch.get_rng_state(),
            "generator_rng": self.generator.get_state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        if self.obs_normalizer is not None:
            state["obs_normalizer"] = self.obs_normalizer.state_dict()
        if self.reward_normalizer is not None:
            state["reward_normalizer"] = self.reward_normalizer.state_dict()
        rollout = self._rollout_state()
        if rollout is not None:
            state["rollout"] = rollout
        return state

    def load_training_state(self, state: dict[str, Any], restore_rollout: bool = True) -> None:
        """Put back what `training_state` returned (with the rollout's position when
        `restore_rollout` and it was saved). Raises KeyError, ValueError, TypeError or
        RuntimeError when it does not fit this model."""
        saved = checkpoint.with_image_ranges(self.policy.state_dict(), state["policy"])
        self.policy.load_state_dict(saved)
        self.params.attach()
        self.optimizer.load_state_dict(self.params.optimizer_state(state["optimizer"]))
        self.num_timesteps = int(state["num_timesteps"])
        self.total_timesteps = int(state["total_timesteps"])
        self.n_updates = int(state["n_updates"])
        # Checkpoints from before the adaptive schedule start it afresh.
        self.adaptive_lr = float(state.get("adaptive_lr", self.config.learning_rate))
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.generator.set_state(state["generator_rng"])
        if self.obs_normalizer is not None:
            self.obs_normalizer.load_state_dict(state["obs_normalizer"])
        if self.reward_normalizer is not None:
            self.reward_normalizer.load_state_dict(state["reward_normalizer"])
        if restore_rollout and "rollout" in state:
            self._restore_rollout_state(state["rollout"])

    def _rollout_state(self) -> dict[str, Any] | None:
        """Where the envs and the memory stand between two rollouts, when the env can save its
        state (see `agent.environment.env_state`); None otherwise, and during a rollout (an SB3
        callback that saves the model mid-rollout saves no episodes to continue)."""
        if self.env is None or self._last_obs is None or self._collecting:
            return None
        env_state = get_env_state(self.env)
        if env_state is None:
            return None
        stats = self.episode_statistics
        return {
            "env": env_state,
            "last_obs": tree_map(lambda x: torch.as_tensor(np.asarray(x)), self._last_obs),
            "last_mask": None if self._last_mask is None else torch.as_tensor(self._last_mask),
            "memory": self._state.cpu(),
            "episode_start": self._episode_start.cpu(),
            "reset_step": self._reset_step.cpu(),
            "episode_returns": torch.tensor(list(stats.return_queue), dtype=torch.float64),
            "episode_lengths": torch.tensor(list(stats.length_queue), dtype=torch.int64),
            "episode_successes": torch.tensor(list(self.successes), dtype=torch.float64),
        }

    def _restore_rollout_state(self, rollout: dict[str, Any]) -> None:
        """Undo `_rollout_state`: the next `learn(reset_num_timesteps=False)` goes on from here."""
        set_env_state(self.env, rollout["env"])
        self._last_obs = tree_map(lambda x: x.numpy(), rollout["last_obs"])
        last_mask = rollout.get("last_mask")
        self._last_mask = None if last_mask is None else last_mask.numpy()
        self._state = rollout["memory"].to(self.device)
        self._episode_start = rollout["episode_start"].to(self.device)
        self._reset_step = rollout["reset_step"].to(self.device)
        stats = self.episode_statistics
        for window, saved in (
            (stats.return_queue, rollout["episode_returns"]),
            (stats.length_queue, rollout["episode_lengths"]),
            (self.successes, rollout["episode_successes"]),
        ):
            window.clear()
            window.extend(saved.tolist())

    @classmethod
    def load(
        cls,
        path: str | Path,
        env: Any = None,
        device: str | None = None,
        tensorboard_log: str | Path | None = None,
        env_overrides: dict[str, Any] | None = None,
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        **kwargs: Any,
    ) -> RecurrentPPO:
        """Load a checkpoint onto `device` (None: the device it was trained on).

        `env`: None for a model that only predicts; "recorded" to rebuild the env the checkpoint
        was trained on (its id, kwargs and wrappers; `env_overrides` update the kwargs); a
        Gymnasium id or an env object (as the constructor takes) to continue on another one
        with the same spaces. The saved episodes continue only on the env they were saved from,
        unchanged. `path` without its `.zip` suffix is found, as in SB3. Raises
        `CheckpointError` (or `EnvError`) with one line on any problem.

        As SB3's `load`: `custom_objects` and `**kwargs` change settings of the loaded model
        (`PPOConfig` fields or SB3's names for them; a changed model continues no saved
        episodes), except SB3's schedule functions, which are dropped with a warning
        (`sb3_names.load_overrides`); `verbose`; `force_reset=True` starts new episodes where
        the saved ones would continue (SB3 resets by default, ours continues them);
        `print_system_info` prints the versions this process runs. A setting that does not
        exist or is invalid raises `ConfigError`.
        """
        path = Path(path)
        if not path.exists() and Path(f"{path}.zip").is_file():
            path = Path(f"{path}.zip")
        payload = checkpoint.load_checkpoint(path)
        meta = checkpoint.read_metadata(payload, path)
        config = meta.config
        sb3 = sb3_names.load_overrides(custom_objects, kwargs)
        if sb3.settings:
            config = PPOConfig.from_dict({**config.to_dict(), **sb3.settings})
        if print_system_info:
            _print_system_info()
        # Checkpoints from before the device was saved were all trained on the CPU.
        config.device = device or str(payload.get("device", "cpu"))
        kwargs = {**(meta.env_spec.get("kwargs") or {}), **(env_overrides or {})}
        wrappers = meta.env_spec.get("wrappers") or []
        env_is_recorded = env == "recorded"
        if env_is_recorded:
            if not meta.env_spec.get("id"):
                raise checkpoint.CheckpointError(
                    f"{path} does not record which env it was trained on"
                )
            env = meta.env_spec["id"]
        model = cls(
            env,
            config,
            env_kwargs=kwargs,
            wrappers=wrappers,
            tensorboard_log=tensorboard_log,
            observation_space=meta.observation_space,
            action_space=meta.action_space,
            verbose=sb3.verbose,
        )
        spaces_found = (model.observation_space, model.action_space)
        if spaces_found != (meta.observation_space, meta.action_space):
            raise EnvError(
                f"the env's spaces {spaces_found} differ from the checkpoint's "
                f"({meta.observation_space}, {meta.action_space})"
            )
        if env is None or isinstance(env, str):
            env_id = env if isinstance(env, str) else meta.env_spec.get("id")
            model.env_spec = {"id": env_id, "kwargs": kwargs, "wrappers": wrappers}
        try:
            model.load_training_state(
                payload,
                restore_rollout=env_is_recorded
                and not (env_overrides or sb3.settings or sb3.force_reset),
            )
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            model.close()
            raise checkpoint.CheckpointError(
                f"{path}: the training state does not fit ({first})"
            ) from None
        model.checkpoint_extra = meta.extra
        return model


def _print_system_info() -> None:
    """SB3's `print_system_info`: the versions that matter to a model, one line."""
    import platform

    import gymnasium

    versions = {"Python": platform.python_version(), "PyTorch": torch.__version__}
    versions |= {"NumPy": np.__version__, "Gymnasium": gymnasium.__version__}
    print(", ".join(f"{k} {v}" for k, v in versions.items()))


def _progress_bar(total: int, initial: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True)


def _update_bar(bar: Any, num_timesteps: int, logs: dict[str, float]) -> None:
    bar.update(min(num_timesteps, bar.total) - bar.n)
    postfix = {}
    if "rollout/ep_rew_mean" in logs:
        postfix["return"] = f"{logs['rollout/ep_rew_mean']:.3g}"
    if "rollout/success_rate" in logs:
        postfix["success"] = f"{logs['rollout/success_rate']:.2f}"
    bar.set_postfix(postfix, refresh=False)
