"""A Bernoulli bandit drawn anew each episode: learning to explore then exploit (meta-RL)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from envs.batched import RENDERABLE, BatchedTask, TaskEnv, TaskVectorEnv, positive_int

CELL = 12
"""Pixels of the rendered frame's unit: an arm's column is two wide and four high."""


class BanditTask(BatchedTask):
    """Bandit dynamics for n copies (see `BanditEnv`)."""

    has_success = False

    def __init__(self, n: int, num_arms: int = 2, length: int = 100) -> None:
        super().__init__(n)
        self.num_arms = positive_int("num_arms", num_arms, minimum=2)
        self.length = positive_int("length", length)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.num_arms + 2,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.num_arms)
        self.probs = np.zeros((n, self.num_arms))
        self.t = np.zeros(n, dtype=np.int64)
        self.last = np.zeros((n, self.num_arms + 2), dtype=np.float32)

    def reset(self, rng: np.random.Generator, mask: np.ndarray) -> None:
        self.probs[mask] = rng.random((int(mask.sum()), self.num_arms))
        self.t[mask] = 0
        self.last[mask] = 0.0

    def observe(self) -> np.ndarray:
        obs = self.last.copy()
        obs[:, -1] = self.t / self.length
        return obs

    def step(
        self, rng: np.random.Generator, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        actions = actions.astype(np.int64)
        p = self.probs[np.arange(self.n), actions]
        pulled = (rng.random(self.n) < p).astype(np.float32)
        self.last[:] = 0.0
        self.last[np.arange(self.n), actions] = 1.0
        self.last[:, self.num_arms] = pulled
        self.t = np.minimum(self.t + 1, self.length)
        return pulled / self.length, self.t >= self.length, np.zeros(self.n, dtype=np.float32)

    def render(self, index: int) -> np.ndarray:
        """A column per arm, filled to its (hidden) pay probability: grey, or for the arm just
        pulled, green when it paid and red when not; below, the elapsed time."""
        height = 4 * CELL
        width = self.num_arms * 3 * CELL
        frame = np.full((height + CELL, width, 3), 40, dtype=np.uint8)
        pulled = np.flatnonzero(self.last[index, : self.num_arms])
        paid = self.last[index, self.num_arms] > 0
        for arm in range(self.num_arms):
            left = arm * 3 * CELL + CELL // 2
            fill = round(float(self.probs[index, arm]) * height)
            colour = (170, 170, 170)
            if arm in pulled:
                colour = (60, 200, 60) if paid else (220, 30, 30)
                frame[:height, left - 2 : left + 2 * CELL + 2] = 90  # the arm pulled: framed
            frame[height - fill : height, left : left + 2 * CELL] = colour
        elapsed = int(self.t[index]) * width // self.length
        frame[height + CELL // 2 :, :elapsed] = 200
        return frame


class BanditEnv(TaskEnv):
    """A Bernoulli bandit whose arm probabilities are drawn per episode ("learning to
    reinforcement learn", Wang et al. 2016; RL^2, Duan et al. 2016).

    ## Description
    Each episode draws a success probability for each of `num_arms` arms, uniformly in [0, 1].
    At every step the agent pulls an arm and sees the arm it pulled and whether it paid. A good
    recurrent policy explores early and then keeps pulling the arm it believes best.

    ## Action Space
    `Discrete(num_arms)`: the arm to pull.

    ## Observation Space
    `Box(0, 1, (num_arms + 2,), float32)`:

    | index | meaning |
    |---|---|
    | 0 .. num_arms - 1 | the previous action, one-hot (all 0 at the first step) |
    | num_arms | the previous reward: 1 if the pull paid (0 at the first step) |
    | num_arms + 1 | the elapsed fraction of the episode, t / length |

    ## Rewards
    1 / `length` per paying pull, so the return is the share of paying pulls. Knowing the best
    arm from the start gives num_arms / (num_arms + 1) in expectation (2/3 for two arms), the
    upper bound. Random pulls give 0.5. The observation includes the last action and reward, so
    a memoryless policy can play win-stay-lose-shift (0.59 for two arms: its long-run average
    over uniform arm probabilities, and 0.61 measured over 100-step episodes); only memory of
    the whole history approaches the bound.

    ## Starting State
    Arm probabilities uniform in [0, 1], drawn at reset.

    ## Episode End
    Terminated after `length` pulls (the time is observed; no registered time limit). This task
    has no success notion, so `info` carries no `success`.

    ## Arguments
    - `num_arms` (int >= 2, default 2)
    - `length` (int >= 1, default 100)
    - `render_mode`: `"rgb_array"` draws a column per arm, filled to its pay probability (which
      the agent does not see), the arm just pulled framed and filled green if it paid, red if
      not, and a bar of the elapsed time.

    ## Version History
    - v0: initial version; `rgb_array` rendering added later (the dynamics are unchanged).
    """

    task_class = BanditTask
    metadata: ClassVar[dict[str, Any]] = RENDERABLE


class BanditVectorEnv(TaskVectorEnv):
    """`num_envs` copies of `BanditEnv` in one numpy call."""

    task_class = BanditTask
    metadata: ClassVar[dict[str, Any]] = {**TaskVectorEnv.metadata, **RENDERABLE}
