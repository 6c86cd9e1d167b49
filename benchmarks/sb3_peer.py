"""sb3-contrib's RecurrentPPO, the peer our benchmarks compare against, built and judged one way.

`benchmarks/throughput.py`, `memory_length.py` and `defaults.py` each run it through here:

    settings = sb3_settings({"n_envs": 8, "n_steps": 32, "lstm_hidden_size": 64, ...})  # ours
    trained = train("Memory/CartPoleNoVel-v0", settings, seed=0, steps=100_000)
    result = evaluate(trained, "Memory/CartPoleNoVel-v0", episodes=20, n_envs=1, seed=1000)

`settings` are sb3-contrib's: `RecurrentPPO`'s keyword arguments, with `n_envs` and
`normalize_obs` for its vector env. `sb3_settings` writes ours (PPOConfig's names) in them.
sb3-contrib and SB3 are imported only when a run starts, so that a benchmark's `--table` and
`--help` need neither.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym

EnvMaker = str | Callable[..., Any]
"""A Gymnasium id, or a function that returns one single env: SB3's `make_vec_env` takes either
and wraps each copy in its `Monitor`."""

SAME_NAMES = (
    "n_envs", "normalize_obs", "n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda",
    "clip_range", "ent_coef", "vf_coef", "max_grad_norm", "target_kl", "normalize_advantage",
)  # fmt: skip
"""Our settings that sb3-contrib takes under the same name and meaning."""


def sb3_settings(ours: Mapping[str, Any]) -> dict[str, Any]:
    """Our hyperparameters (PPOConfig's names) as sb3-contrib's, for `train`.

    `SAME_NAMES` pass as they are; the others go into `policy_kwargs`: `lstm_hidden_size`,
    `ortho_init`, `activation_fn` (`tanh` or `relu`, as its class), `net_arch` (the same heads
    for actor and critic), `adam_eps` (Adam's `eps`). `learning_rate` with `lr_schedule`
    `linear` becomes sb3's schedule of it, annealed to 0 at the end as ours, and so does
    `clip_range` with `clip_schedule` `linear`. The critic always
    has its own LSTM, as ours by default. A setting left out keeps sb3-contrib's default (not
    always ours: an LSTM of 256 units, heads of 64 x 64); a setting with no counterpart raises
    ValueError, so nothing is dropped unseen.
    """
    import torch

    ours = dict(ours)
    settings = {key: ours.pop(key) for key in SAME_NAMES if key in ours}
    schedule = ours.pop("lr_schedule", "constant")
    if schedule not in ("constant", "linear"):
        raise ValueError(f"lr_schedule {schedule!r} has no sb3-contrib counterpart")
    if "learning_rate" in ours:
        lr = ours.pop("learning_rate")
        settings["learning_rate"] = (lambda progress: lr * progress) if schedule == "linear" else lr
    if ours.pop("clip_schedule", "constant") == "linear":
        clip = settings.get("clip_range", 0.2)
        settings["clip_range"] = lambda progress: clip * progress
    policy: dict[str, Any] = {"enable_critic_lstm": True}
    for key in ("lstm_hidden_size", "ortho_init"):
        if key in ours:
            policy[key] = ours.pop(key)
    if "net_arch" in ours:
        heads = list(ours.pop("net_arch"))
        policy["net_arch"] = {"pi": heads, "vf": list(heads)}
    if "activation_fn" in ours:
        policy["activation_fn"] = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}[
            ours.pop("activation_fn")
        ]
    if "adam_eps" in ours:
        policy["optimizer_kwargs"] = {"eps": ours.pop("adam_eps")}
    if ours:
        raise ValueError(f"no sb3-contrib counterpart for {', '.join(sorted(ours))}")
    return {**settings, "policy_kwargs": policy}


NATURE_CNN_SMALLEST = 36
"""The smallest height and width SB3's NatureCNN (CnnLstmPolicy's) takes: its kernels 8, 4 and 3
at strides 4, 2 and 1 leave nothing of less."""


def policy_for(space: gym.Space) -> str:
    """Dict observations need sb3's MultiInput policy; images NatureCNN can take, CnnLstmPolicy.
    Smaller images (our 8x8 tasks, MiniGrid's 7x7 codes) make CnnLstmPolicy fail, so they go
    through the MLP policy, flattened."""
    import gymnasium as gym
    from stable_baselines3.common.preprocessing import is_image_space

    if isinstance(space, gym.spaces.Dict):
        return "MultiInputLstmPolicy"
    if is_image_space(space) and sorted(space.shape)[1] >= NATURE_CNN_SMALLEST:  # height, width
        return "CnnLstmPolicy"
    return "MlpLstmPolicy"


class Update(NamedTuple):
    """What a benchmark may record after each of sb3-contrib's updates."""

    steps: int
    """Environment steps so far."""
    seconds: float
    """Since training started (inside `learn`, the model built)."""
    returns: list[float]
    """Of the last 100 training episodes (SB3's `ep_info_buffer`)."""
    successes: list[float]
    """`info["success"]` of the last 100 training episodes that gave one."""


class Trained(NamedTuple):
    """What `train` hands `evaluate` and the benchmark."""

    model: Any
    """The sb3-contrib `RecurrentPPO`."""
    env: Any
    """Its vector env (a `VecNormalize` with `normalize_obs`): `evaluate` reads its statistics."""
    wall: float
    """Seconds in `learn`, the time every benchmark compares: building the model and the envs
    is not in it."""


class Evaluation(NamedTuple):
    """What `evaluate` measured; each benchmark scores it its own way (mean return, success)."""

    returns: list[float]
    """One per episode."""
    successes: list[float]
    """`info["success"]` of the episodes that gave one."""
    wall: float
    """Seconds, the eval envs built and played."""


def train(
    env: EnvMaker,
    settings: Mapping[str, Any],
    *,
    seed: int,
    steps: int,
    env_kwargs: dict[str, Any] | None = None,
    after_update: Callable[[Update], None] | None = None,
) -> Trained:
    """sb3-contrib's RecurrentPPO with `settings` (see `sb3_settings`), trained on the CPU for
    `steps` environment steps on `settings["n_envs"]` (default 8) copies of `env` seeded from
    `seed`; observations normalised by `VecNormalize` (rewards not) with `normalize_obs`.
    `after_update` is called after every update, the last one included."""
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    import envs  # noqa: F401  (registers Memory/*)

    settings = dict(settings)
    n_envs, normalize = settings.pop("n_envs", 8), settings.pop("normalize_obs", False)
    vec_env = make_vec_env(env, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)
    if normalize:
        gamma = settings.get("gamma", 0.99)
        vec_env = VecNormalize(vec_env, norm_obs=True, norm_reward=False, gamma=gamma)
    policy = policy_for(vec_env.observation_space)
    model = RecurrentPPO(policy, vec_env, device="cpu", seed=seed, **settings)
    callback = None if after_update is None else each_update(after_update)
    start = time.perf_counter()
    model.learn(steps, callback=callback)
    return Trained(model, vec_env, time.perf_counter() - start)


def each_update(record: Callable[[Update], None]) -> Any:
    """An SB3 callback that hands `record` an `Update` as each rollout after the first starts,
    and at the end: after every update."""
    from stable_baselines3.common.callbacks import BaseCallback

    class EachUpdate(BaseCallback):
        def _on_training_start(self) -> None:
            self.start = time.perf_counter()
            self.successes: deque[float] = deque(maxlen=100)

        def _on_step(self) -> bool:
            infos = self.locals["infos"]
            for i in np.flatnonzero(self.locals["dones"]):
                if "success" in infos[i]:
                    self.successes.append(float(infos[i]["success"]))
            return True

        def _on_rollout_start(self) -> None:
            if self.num_timesteps > 0:
                self.hand_out()

        def _on_training_end(self) -> None:
            self.hand_out()

        def hand_out(self) -> None:
            returns = [info["r"] for info in self.model.ep_info_buffer]
            seconds = time.perf_counter() - self.start
            record(Update(self.num_timesteps, seconds, returns, list(self.successes)))

    return EachUpdate()


def evaluate(
    trained: Trained,
    env: EnvMaker,
    *,
    episodes: int,
    n_envs: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
) -> Evaluation:
    """`episodes` deterministic episodes of the trained model on `n_envs` fresh copies of `env`
    seeded from `seed`, with the training env's observation statistics, frozen.

    `evaluate_policy` deals the episodes out among the copies, so `n_envs` decides which
    episodes are played: each benchmark keeps the count its recorded results were measured with.
    """
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize

    start = time.perf_counter()
    eval_env = make_vec_env(env, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs)
    if isinstance(trained.env, VecNormalize):
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False)
        eval_env.obs_rms = trained.env.obs_rms
    successes: list[float] = []

    def on_step(local: dict[str, Any], _: dict[str, Any]) -> None:
        if local["done"] and "episode" in local["info"] and "success" in local["info"]:
            successes.append(float(local["info"]["success"]))

    returns, _ = evaluate_policy(
        trained.model, eval_env, n_eval_episodes=episodes, deterministic=True,
        return_episode_rewards=True, callback=on_step,
    )  # fmt: skip
    wall = time.perf_counter() - start
    eval_env.close()
    return Evaluation([float(r) for r in returns], successes, wall)
