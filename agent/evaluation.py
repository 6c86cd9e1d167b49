"""Episode rollouts of a trained model: the loop behind `evaluate.py` and periodic evaluation.

The envs autoreset in the same step (`AutoresetMode.SAME_STEP`): the observation returned with
`terminated | truncated` already begins the next episode, so that step's flags are exactly the
`episode_start` of the next `predict` call, which resets the recurrent state of those copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from agent.vec_env import EnvError, check_env_id, load_callable

SUCCESS_KEYS = ("success", "is_success")
"""Info keys read on an episode's last step to decide whether it succeeded."""


class Policy(Protocol):
    """What `evaluate` needs: sb3-contrib's recurrent `predict`, and the spaces."""

    observation_space: gym.Space
    action_space: gym.Space

    def predict(
        self,
        observation: Any,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]: ...


def make_eval_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[str] = (),
    n_envs: int = 1,
    video_dir: str | Path | None = None,
) -> SyncVectorEnv:
    """`n_envs` copies of `env_id` (with `wrappers`, innermost first) that autoreset in the same
    step. With `video_dir`, the first copy renders `rgb_array` frames and records every episode.

    Raises `EnvError` for an unknown id, bad kwargs or wrappers, or an env that cannot render.
    """
    check_env_id(env_id)
    wrapper_fns = [load_callable(w) for w in wrappers]
    kwargs = dict(env_kwargs or {})
    if video_dir is not None:
        kwargs["render_mode"] = "rgb_array"

    def make(index: int) -> gym.Env:
        env = gym.make(env_id, **kwargs)
        for wrap in wrapper_fns:
            env = wrap(env)
        if video_dir is not None and index == 0:
            if "rgb_array" not in env.metadata.get("render_modes", []):
                raise EnvError(f"{env_id} cannot render rgb_array frames, so it cannot be filmed")
            env = gym.wrappers.RecordVideo(
                env, str(video_dir), episode_trigger=lambda _: True, disable_logger=True
            )
        return env

    try:
        return SyncVectorEnv(
            [lambda i=i: make(i) for i in range(n_envs)], autoreset_mode=AutoresetMode.SAME_STEP
        )
    except (TypeError, ValueError, gym.error.Error) as e:
        if isinstance(e, EnvError):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EnvError(f"cannot make {env_id!r} with kwargs {kwargs}: {first}") from None


def evaluate(
    model: Policy,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[str] = (),
    n_episodes: int = 100,
    seed: int = 0,
    deterministic: bool = True,
    n_envs: int = 4,
    video_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run exactly `n_episodes` episodes of `model` and summarise them.

    The episodes are shared out in advance among `n_envs` copies (copy i runs
    `(n_episodes + i) // n_envs`), so short episodes are not over-represented. Recurrent state
    is carried across steps and reset at each episode start.

    Returns {"episodes", "mean_return", "std_return", "mean_length", "success_rate"}, where
    success_rate is the mean of the last step's `success`/`is_success` info, or None when the
    env reports neither.
    """
    if n_episodes <= 0:
        raise ValueError(f"n_episodes must be positive, got {n_episodes}")
    n_envs = 1 if video_dir is not None else max(1, min(n_envs, n_episodes))
    env = make_eval_env(env_id, env_kwargs, wrappers, n_envs, video_dir)
    try:
        check_spaces(model, env, env_id, env_kwargs)
        return _run_episodes(model, env, n_episodes, seed, deterministic)
    finally:
        env.close()


def check_spaces(
    model: Policy, env: gym.vector.VectorEnv, env_id: str, env_kwargs: dict[str, Any] | None
) -> None:
    """Raise `EnvError` when the env's spaces are not the ones the model was trained on (say,
    kwargs that change the observation size)."""
    if (
        env.single_observation_space != model.observation_space
        or env.single_action_space != model.action_space
    ):
        raise EnvError(
            f"{env_id} with kwargs {env_kwargs or {}} has spaces "
            f"({env.single_observation_space}, {env.single_action_space}); the model was "
            f"trained on ({model.observation_space}, {model.action_space})"
        )


def _run_episodes(
    model: Policy, env: SyncVectorEnv, n_episodes: int, seed: int, deterministic: bool
) -> dict[str, Any]:
    n = env.num_envs
    targets = np.array([(n_episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=int)
    running_return = np.zeros(n)
    running_length = np.zeros(n, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    successes: list[float] = []

    obs, _ = env.reset(seed=seed)
    state: tuple[np.ndarray, ...] | None = None
    episode_start = np.ones(n, dtype=bool)
    while (counts < targets).any():
        actions, state = model.predict(obs, state, episode_start, deterministic=deterministic)
        obs, rewards, terminated, truncated, infos = env.step(actions)
        running_return += rewards
        running_length += 1
        episode_start = terminated | truncated
        for i in np.flatnonzero(episode_start):
            if counts[i] < targets[i]:
                counts[i] += 1
                returns.append(float(running_return[i]))
                lengths.append(int(running_length[i]))
                success = _success(infos, i)
                if success is not None:
                    successes.append(success)
            running_return[i] = 0.0
            running_length[i] = 0
    return {
        "episodes": len(returns),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "mean_length": float(np.mean(lengths)),
        "success_rate": float(np.mean(successes)) if successes else None,
    }


def _success(infos: dict[str, Any], i: int) -> float | None:
    """The `success`/`is_success` info of copy i's final step (SAME_STEP puts it in
    `final_info`), or None when it has none."""
    final = infos.get("final_info", {})
    for key in SUCCESS_KEYS:
        if key in final and final.get(f"_{key}", np.ones(i + 1, bool))[i]:
            return float(final[key][i])
    return None
