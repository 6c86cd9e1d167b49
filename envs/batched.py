"""One implementation per memory task, used both as a single Gymnasium env and as a native vector
env that steps all copies in one numpy call.

A task (`BatchedTask`) holds the state of n copies as arrays and steps them together. `TaskEnv`
runs one copy (n = 1) behind the `gymnasium.Env` API; `TaskVectorEnv` runs `num_envs` copies
behind the `gymnasium.vector.VectorEnv` API with Gymnasium's default NEXT_STEP autoreset: the
step after a copy's episode ends ignores that copy's action and returns its first observation of
a new episode with reward 0 and terminated = truncated = False, exactly as `SyncVectorEnv` does.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


class BatchedTask:
    """The dynamics of n copies of a task, as numpy arrays. Subclasses define the task."""

    observation_space: spaces.Space
    action_space: spaces.Space
    has_success: bool = True

    def __init__(self, n: int) -> None:
        self.n = n

    def reset(self, rng: np.random.Generator, mask: np.ndarray) -> None:
        """Start new episodes in the copies where `mask` [n] is True."""
        raise NotImplementedError

    def observe(self) -> np.ndarray:
        """The current observations of all copies, [n, ...]."""
        raise NotImplementedError

    def step(
        self, rng: np.random.Generator, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance all copies; returns rewards [n] (float32), terminated [n], success [n].

        `success` is read only where terminated is True.
        """
        raise NotImplementedError

    def render(self, index: int) -> np.ndarray:
        """An RGB frame [H, W, 3] (uint8) of copy `index`."""
        raise NotImplementedError

    def get_state(self) -> dict[str, np.ndarray]:
        """The state of all copies: every numpy array attribute (the arguments are plain values)."""
        return {k: v.copy() for k, v in vars(self).items() if isinstance(v, np.ndarray)}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what `get_state` returned; a missing or misshapen array is a ValueError."""
        current = self.get_state()
        if set(state) != set(current):
            raise ValueError(f"task state has fields {sorted(state)}, expected {sorted(current)}")
        for name, value in state.items():
            value = np.asarray(value)
            if value.shape != current[name].shape:
                raise ValueError(
                    f"task state {name!r} has shape {value.shape}, expected {current[name].shape}"
                )
            setattr(self, name, value.astype(current[name].dtype, copy=True))


RENDERABLE: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}
"""Metadata of the single envs whose task can draw itself."""


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """`value` as an int >= `minimum`, or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class TaskEnv(gym.Env):
    """A single copy of a `BatchedTask` as a Gymnasium env."""

    task_class: ClassVar[type[BatchedTask]]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        self.task = self.task_class(1, **kwargs)
        self.observation_space = self.task.observation_space
        self.action_space = self.task.action_space
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.render_mode = render_mode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.task.reset(self.np_random, np.ones(1, dtype=bool))
        return self.task.observe()[0], {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        actions = np.asarray(action)[None]
        rewards, terminated, success = self.task.step(self.np_random, actions)
        done = bool(terminated[0])
        info = {"success": float(success[0])} if done and self.task.has_success else {}
        return self.task.observe()[0], float(rewards[0]), done, False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.task.render(0)


class TaskVectorEnv(VectorEnv):
    """`num_envs` copies of a `BatchedTask` stepped in one numpy call (NEXT_STEP autoreset)."""

    task_class: ClassVar[type[BatchedTask]]
    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": [],
        "render_fps": 10,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(self, num_envs: int = 1, render_mode: str | None = None, **kwargs: Any) -> None:
        self.num_envs = positive_int("num_envs", num_envs)
        self.task = self.task_class(self.num_envs, **kwargs)
        self.single_observation_space = self.task.observation_space
        self.single_action_space = self.task.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self._autoreset = np.zeros(self.num_envs, dtype=bool)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start new episodes in all copies. All copies draw from one generator, so a list of
        seeds (one per copy, as `SyncVectorEnv` takes) seeds it from the whole list."""
        if isinstance(seed, list | tuple):
            if len(seed) != self.num_envs:
                raise ValueError(f"got {len(seed)} seeds for {self.num_envs} copies")
            seed = (
                None if seed[0] is None else int(np.random.SeedSequence(seed).generate_state(1)[0])
            )
        super().reset(seed=seed)
        self.task.reset(self.np_random, np.ones(self.num_envs, dtype=bool))
        self._autoreset[:] = False
        return self.task.observe().copy(), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        resetting = self._autoreset.copy()
        rewards, terminated, success = self.task.step(self.np_random, np.asarray(actions))
        if resetting.any():
            self.task.reset(self.np_random, resetting)
            rewards[resetting] = 0.0
            terminated[resetting] = False
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}
        if self.task.has_success and terminated.any():
            infos = {"success": np.where(terminated, success, 0.0), "_success": terminated.copy()}
        self._autoreset = terminated.copy()
        return self.task.observe().copy(), rewards, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode != "rgb_array":
            return None
        return tuple(self.task.render(i) for i in range(self.num_envs))

    def get_state(self) -> dict[str, Any]:
        """Everything that decides the env's future given the actions: the copies' arrays, the
        pending autoresets and the random generator. Plain data (arrays, ints, strings), so a
        trainer can checkpoint it and resume the very same episodes."""
        return {
            "arrays": {**self.task.get_state(), "_autoreset": self._autoreset.copy()},
            "rng": self.np_random.bit_generator.state,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore what `get_state` returned."""
        arrays = dict(state["arrays"])
        autoreset = np.asarray(arrays.pop("_autoreset"), dtype=bool)
        if autoreset.shape != (self.num_envs,):
            raise ValueError(
                f"state is of {autoreset.shape[0]} copies, this env has {self.num_envs}"
            )
        self.task.set_state(arrays)
        self._autoreset = autoreset.copy()
        rng = np.random.Generator(getattr(np.random, state["rng"]["bit_generator"])())
        rng.bit_generator.state = state["rng"]
        self.np_random = rng
