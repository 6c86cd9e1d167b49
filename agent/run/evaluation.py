"""Episode rollouts of a trained model: the loop behind `evaluate.py` and periodic evaluation.

The envs autoreset in the same step (`AutoresetMode.SAME_STEP`): the observation returned with
`terminated | truncated` already begins the next episode, so that step's flags are exactly the
`episode_start` of the next `predict` call, which resets the recurrent state of those copies.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from agent.environment.masks import MaskSource
from agent.environment.vec_env import EnvError, check_env_id, copy_wrappers

SUCCESS_KEYS = ("success", "is_success")
"""Info keys read on an episode's last step to decide whether it succeeded."""

MIN_VIDEO_HEIGHT = 256
"""Frames lower than this are enlarged for videos (the T-maze draws itself 24 pixels high)."""

MAX_VIDEO_WIDTH = 1920
"""Enlarging stops before a frame gets wider than this (a long T-maze is a long strip)."""

MAX_EVAL_ENVS = 32
"""The most env copies `evaluate` steps together by default (one per episode up to this). A
policy call costs about the same for 4 copies as for 20, so an evaluation of 20 CartPole
episodes of 500 steps took 0.59 s with a copy per episode and 2.2 s with 4 copies."""


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
        **options: Any,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...]]: ...


def make_eval_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[str] = (),
    n_envs: int = 1,
    video_dir: str | Path | None = None,
    video_episodes: int | None = None,
) -> SyncVectorEnv:
    """`n_envs` copies of `env_id` (with `wrappers`, innermost first) that autoreset in the same
    step. With `video_dir`, the first copy renders `rgb_array` frames (see `UpscaleFrames`) and
    films its first `video_episodes` episodes (all when None), one whole episode per mp4.

    Raises `EnvError` for an unknown id, bad kwargs or wrappers, or an env that cannot render
    (including a missing render dependency such as pygame, named with its install command). On
    an error, a `video_dir` that this call created is not left behind empty.
    """
    check_env_id(env_id)
    wrapper_fns = copy_wrappers(wrappers)
    kwargs = dict(env_kwargs or {})
    if video_dir is not None:
        kwargs["render_mode"] = "rgb_array"

    def make(index: int) -> gym.Env:
        env = gym.make(env_id, **kwargs)
        for wrap in wrapper_fns:
            env = wrap(env)
        if video_dir is not None and index == 0:
            env = _filmed(env, env_id, video_dir, video_episodes)
        return env

    try:
        with _removed_if_left_empty(video_dir):
            return SyncVectorEnv(
                [lambda i=i: make(i) for i in range(n_envs)],
                autoreset_mode=AutoresetMode.SAME_STEP,
            )
    except (TypeError, ValueError, gym.error.Error) as e:
        if isinstance(e, EnvError):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EnvError(f"cannot make {env_id!r} with kwargs {kwargs}: {first}") from None


class UpscaleFrames(gym.Wrapper):
    """Enlarges rendered frames lower than `min_height` by a whole factor, nearest-neighbour, so
    pixel-art frames stay sharp and keep their aspect ratio; the factor stops where the width
    would pass `max_width`. Frames that are not RGB arrays pass through."""

    def __init__(
        self, env: gym.Env, min_height: int = MIN_VIDEO_HEIGHT, max_width: int = MAX_VIDEO_WIDTH
    ) -> None:
        super().__init__(env)
        self.min_height = min_height
        self.max_width = max_width

    def render(self) -> Any:
        frame = self.env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            return frame
        height, width = frame.shape[:2]
        factor = max(1, min(-(-self.min_height // height), self.max_width // width))
        return frame.repeat(factor, axis=0).repeat(factor, axis=1)


def _filmed(env: gym.Env, env_id: str, video_dir: str | Path, n_episodes: int | None) -> gym.Env:
    """`env` filming its first `n_episodes` episodes into `video_dir`, once a reset and a render
    have shown that it can draw frames: a missing render dependency fails here, before the
    folder exists, rather than in the first step."""
    if "rgb_array" not in env.metadata.get("render_modes", []):
        raise EnvError(f"{env_id} cannot render rgb_array frames, so it cannot be filmed")
    if importlib.util.find_spec("moviepy") is None:
        raise EnvError("filming needs moviepy: pip install moviepy")
    try:
        env.reset()
        env.render()
    except gym.error.DependencyNotInstalled as e:
        missing = e.__cause__
        if isinstance(missing, ModuleNotFoundError) and missing.name:
            package = missing.name.partition(".")[0]
            raise EnvError(f"filming {env_id} needs {package}: pip install {package}") from None
        raise EnvError(f"filming {env_id} needs a missing package: {e}") from None
    # SAME_STEP autoreset starts episode n_episodes as the last one ends: it must not be filmed.
    return gym.wrappers.RecordVideo(
        UpscaleFrames(env),
        str(video_dir),
        episode_trigger=lambda episode: n_episodes is None or episode < n_episodes,
        disable_logger=True,
    )


@contextmanager
def _removed_if_left_empty(folder: str | Path | None) -> Iterator[None]:
    """On an error inside the block, remove `folder` and the parents made with it if they did not
    exist before and are still empty."""
    if folder is None:
        yield
        return
    folder = Path(folder).absolute()
    new = [path for path in (folder, *folder.parents) if not path.exists()]
    try:
        yield
    except BaseException:
        for path in new:  # deepest first; stops at the first one holding something
            if not path.is_dir() or any(path.iterdir()):
                break
            path.rmdir()
        raise


def evaluate(
    model: Policy,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: Sequence[str] = (),
    n_episodes: int = 100,
    seed: int = 0,
    deterministic: bool = True,
    n_envs: int = MAX_EVAL_ENVS,
    video_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run exactly `n_episodes` episodes of `model` and summarise them.

    The episodes are shared out in advance among `n_envs` copies (copy i runs
    `(n_episodes + i) // n_envs`), so short episodes are not over-represented; by default one
    copy per episode, at most `MAX_EVAL_ENVS`. Recurrent state is carried across steps and reset
    at each episode start.

    Returns {"episodes", "mean_return", "std_return", "mean_length", "success_rate"}, where
    success_rate is the mean of the last step's `success`/`is_success` info, or None when the
    env reports neither.
    """
    if n_episodes <= 0:
        raise ValueError(f"n_episodes must be positive, got {n_episodes}")
    # Under video, one copy runs all episodes, so each episode is filmed whole and in order.
    n_envs = 1 if video_dir is not None else max(1, min(n_envs, n_episodes))
    with _removed_if_left_empty(video_dir):
        env = make_eval_env(env_id, env_kwargs, wrappers, n_envs, video_dir, n_episodes)
        try:
            check_spaces(model, env, env_id, env_kwargs)
            return _run_episodes(model, env, n_episodes, seed, deterministic, env_id)
        finally:
            env.close()


def evaluate_recorded_env(model: Any, **options: Any) -> dict[str, Any]:
    """`evaluate` on the env that `model.env_spec` records (its id, kwargs and wrappers): what
    `evaluate.py` and the periodic evaluation of `train.py` both run. `options` are
    `evaluate`'s keyword arguments."""
    spec = model.env_spec
    return evaluate(model, spec["id"], spec["kwargs"], spec["wrappers"], **options)


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
    model: Policy,
    env: SyncVectorEnv,
    n_episodes: int,
    seed: int,
    deterministic: bool,
    env_id: str | None = None,
) -> dict[str, Any]:
    """Step `env` until each copy has run its share of `n_episodes`, acting under the env's
    action masks (`agent.environment.masks`) where it gives any."""
    n = env.num_envs
    # The observation goes to `predict` whole: the model takes out what it does not see.
    masks = MaskSource(env, model.action_space, env_id, keep_entry=True)
    targets = np.array([(n_episodes + i) // n for i in range(n)])
    counts = np.zeros(n, dtype=int)
    running_return = np.zeros(n)
    running_length = np.zeros(n, dtype=int)
    returns: list[float] = []
    lengths: list[int] = []
    successes: list[float] = []

    obs, infos = env.reset(seed=seed)
    state: tuple[np.ndarray, ...] | None = None
    episode_start = np.ones(n, dtype=bool)
    steps = 0
    while (counts < targets).any():
        obs, mask = masks.split(obs, infos, steps)
        # Only with a mask: a policy without masks (an SB3 model) keeps its own signature.
        options = {"action_masks": mask} if mask is not None else {}
        actions, state = model.predict(
            obs, state, episode_start, deterministic=deterministic, **options
        )
        obs, rewards, terminated, truncated, infos = env.step(actions)
        steps += n
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
