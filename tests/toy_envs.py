"""Small environments built for tests: arbitrary spaces, and an endless constant-reward task."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class AnySpaceEnv(gym.Env):
    """Random observations from any space; episodes end at random (terminated) or at 12 steps
    (truncated); reward 1 when the first action component is 'high'."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        assert self.action_space.contains(action), f"{action!r} not in {self.action_space}"
        self.t += 1
        first = np.asarray(action).reshape(-1)[0] if np.ndim(action) else action
        reward = float(first > 0)
        terminated = bool(self.np_random.random() < 0.1)
        truncated = self.t >= 12
        return self.observation_space.sample(), reward, terminated, truncated, {}


class ConstantRewardEnv(gym.Env):
    """Reward 1 at every step, forever; only a time limit ends an episode."""

    observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 1.0, False, False, {}


def vector(make_env, n: int = 2) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv([make_env for _ in range(n)])


class RecallValueEnv(gym.Env):
    """Continuous actions that need memory: a value x ~ U(-1, 1) is shown at the first step
    only; at every later step the reward is -(action - x)^2 / (length - 1).

    Optimal return 0; a memoryless policy can do no better than answering 0: -E[x^2] = -1/3.
    """

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, length: int = 8) -> None:
        self.length = length
        self.t = 0
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.x = float(self.np_random.uniform(-1.0, 1.0))
        return np.array([self.x, 1.0], np.float32), {}

    def step(self, action):
        self.t += 1
        a = float(np.clip(np.asarray(action).reshape(-1)[0], -1.0, 1.0))
        reward = -((a - self.x) ** 2) / (self.length - 1) if self.t > 0 else 0.0
        return np.zeros(2, np.float32), reward, self.t >= self.length - 1, False, {}


class ScriptedEpisodesEnv(gym.Env):
    """Episodes of exactly `length` steps, all ended the same way (`end`: "terminated" or
    "truncated"), so that a test knows where every episode starts and ends.

    Under NEXT_STEP autoreset a vector env of these runs a cycle of `length` + 1 steps: steps
    0 .. length - 1 of an episode (the last one ends it), then the reset step. The observation
    after k steps of an episode is [k / length, 1] (the final one is [1, 1]); the reward of a
    step is k + action / 2, so it is never 0 and depends on the action.
    """

    observation_space = spaces.Box(0.0, 1.0, (2,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, length: int = 3, end: str = "terminated") -> None:
        if end not in ("terminated", "truncated"):
            raise ValueError(f"end must be 'terminated' or 'truncated', got {end!r}")
        self.length = length
        self.end = end
        self.k = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.k / self.length, 1.0], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.k = 0
        return self._obs(), {}

    def step(self, action):
        self.k += 1
        done = self.k >= self.length
        reward = float(self.k) + 0.5 * float(action)
        return (
            self._obs(),
            reward,
            done and self.end == "terminated",
            done and self.end == "truncated",
            {},
        )


SCRIPT = ((3, "truncated"), (5, "terminated"), (8, "truncated"), (8, "terminated"))
"""(length, end) of each copy of a scripted vector env. With 8-step rollouts, copy 0 truncates
mid-rollout and starts an episode at the second rollout's first step; copy 1 terminates
mid-rollout and is mid-episode at the rollout boundary; copies 2 and 3 end an episode (truncated,
terminated) at the first rollout's last step, so the second rollout begins with their reset steps."""


def scripted_vector(script=SCRIPT) -> gym.vector.SyncVectorEnv:
    """A vector env (NEXT_STEP autoreset) of `ScriptedEpisodesEnv` copies, one per (length, end)."""
    return gym.vector.SyncVectorEnv(
        [lambda length=length, end=end: ScriptedEpisodesEnv(length, end) for length, end in script]
    )


def scripted_steps(script, n_steps: int, first: int = 0) -> dict[str, np.ndarray]:
    """Where the episodes of `scripted_vector(script)` stand at vector steps first ..
    first + n_steps - 1 (counted from the reset): bool [T, E] arrays `start` (first step of an
    episode), `end` (the step that ends it) and `reset` (the autoreset step after an end)."""
    t = np.arange(first, first + n_steps)[:, None]
    lengths = np.array([length for length, _ in script])[None, :]
    phase = t % (lengths + 1)
    return {"start": phase == 0, "end": phase == lengths - 1, "reset": phase == lengths}
