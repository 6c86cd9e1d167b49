"""Passive T-maze: remember a cue across a corridor of adjustable length."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from envs.batched import RENDERABLE, BatchedTask, TaskEnv, TaskVectorEnv, positive_int


class TMazeTask(BatchedTask):
    """The T-maze dynamics for n copies (see `TMazeEnv` for the documentation)."""

    def __init__(self, n: int, length: int = 10, noise: bool = False) -> None:
        super().__init__(n)
        self.length = positive_int("length", length)
        if not isinstance(noise, bool | np.bool_):
            raise ValueError(f"noise must be a bool, got {noise!r}")
        self.noise = bool(noise)
        dim = 3 if self.noise else 2
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(dim,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = np.zeros(n, dtype=np.int64)
        self.goal = np.zeros(n, dtype=np.int64)  # 0: up, 1: down
        self._noise = np.zeros(n, dtype=np.float32)

    def reset(self, rng: np.random.Generator, mask: np.ndarray) -> None:
        self.t[mask] = 0
        self.goal[mask] = rng.integers(0, 2, size=int(mask.sum()))
        if self.noise:
            self._noise = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=self.n)

    def observe(self) -> np.ndarray:
        obs = np.zeros((self.n, self.observation_space.shape[0]), dtype=np.float32)
        at_start = self.t == 0
        obs[:, 0] = np.where(at_start, 1.0 - 2.0 * self.goal, 0.0)
        obs[:, 1] = self.t == self.length
        if self.noise:
            obs[:, 2] = np.where(at_start | (self.t == self.length), 0.0, self._noise)
        return obs

    def step(
        self, rng: np.random.Generator, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        at_junction = self.t >= self.length
        correct = actions.astype(np.int64) == self.goal
        rewards = np.where(at_junction, np.where(correct, 1.0, -1.0), 0.0).astype(np.float32)
        self.t = np.minimum(self.t + 1, self.length + 1)
        if self.noise:
            self._noise = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=self.n)
        return rewards, at_junction, correct.astype(np.float32)

    def render(self, index: int) -> np.ndarray:
        cells = min(self.length, 60) + 2
        scale = 8
        frame = np.full((3 * scale, cells * scale, 3), 40, dtype=np.uint8)
        frame[scale : 2 * scale, : (cells - 1) * scale] = 200  # the corridor
        frame[:, (cells - 1) * scale :] = 200  # the vertical bar of the T
        cue_colour = (0, 160, 255) if self.goal[index] == 0 else (255, 120, 0)
        frame[scale : 2 * scale, :scale] = cue_colour
        goal_row = 0 if self.goal[index] == 0 else 2
        frame[goal_row * scale : (goal_row + 1) * scale, (cells - 1) * scale :] = (60, 200, 60)
        pos = round(min(self.t[index], self.length) / self.length * (cells - 1))
        frame[scale + 2 : 2 * scale - 2, pos * scale + 2 : (pos + 1) * scale - 2] = (220, 30, 30)
        return frame


class TMazeEnv(TaskEnv):
    """Passive T-maze (the memory-length probe of Ni et al., 2023, "When do transformers shine
    in RL? Decoupling memory from credit assignment").

    ## Description
    The agent starts at the foot of a corridor and is shown a cue, up (+1) or down (-1), only at
    the first step. It is carried along the corridor for `length` steps (its actions there are
    ignored: the maze is passive, so the task isolates memory from exploration), then reaches the
    junction, where its action chooses the arm. The cue must be remembered across the whole gap.

    ## Action Space
    `Discrete(2)`: 0 = up, 1 = down. Only the action taken at the junction matters.

    ## Observation Space
    `Box(-1, 1, (2,), float32)`, or `(3,)` with `noise=True`:

    | index | meaning |
    |---|---|
    | 0 | cue: +1 (up) or -1 (down) at the first step, 0 afterwards |
    | 1 | junction flag: 1 at the junction (step `length`), else 0 |
    | 2 | (`noise=True`) a random +-1 at every corridor step, carrying no information |

    ## Rewards
    +1 for the arm the cue pointed to, -1 for the other; 0 in the corridor. Optimal return: 1.
    A memoryless policy cannot tell the arms apart at the junction: its best expected return is
    0 (success 0.5).

    ## Starting State
    The cue is drawn uniformly from {up, down}.

    ## Episode End
    Terminated after the choice at the junction: every episode lasts exactly `length + 1` steps.
    The env ends its own episodes, so it is registered without a time limit and no fixed limit
    cuts a long gap. `info["success"]` (1.0 or 0.0) is given at the last step.

    ## Arguments
    - `length` (int >= 1, default 10): corridor steps between the cue and the junction.
    - `noise` (bool, default False): add the uninformative noise channel.
    - `render_mode`: `"rgb_array"` draws the maze, the cue and the agent.

    ## Version History
    - v0: initial version.
    """

    task_class = TMazeTask
    metadata: ClassVar[dict[str, Any]] = RENDERABLE


class TMazeVectorEnv(TaskVectorEnv):
    """`num_envs` T-mazes stepped in one numpy call; see `TMazeEnv`."""

    task_class = TMazeTask
    metadata: ClassVar[dict[str, Any]] = {**TaskVectorEnv.metadata, **RENDERABLE}
