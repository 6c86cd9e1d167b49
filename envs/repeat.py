"""Symbol-stream tasks: repeat the first symbol, or the symbol shown `delay` steps ago."""

from __future__ import annotations

import colorsys
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from envs.batched import RENDERABLE, BatchedTask, TaskEnv, TaskVectorEnv, positive_int

CELL = 12
"""Pixels of a symbol's square in the rendered frame."""
SHOWN = 48
"""Symbols a frame shows at most: a longer stream scrolls, keeping the current one in view."""


def symbol_colours(k: int) -> np.ndarray:
    """`k` colours evenly spaced in hue, [k, 3] uint8: symbol i is drawn in colour i. Half a
    step off red, the colour of wrong answers."""
    rgb = [colorsys.hsv_to_rgb((i + 0.5) / k, 0.8, 0.95) for i in range(k)]
    return (np.array(rgb) * 255).astype(np.uint8)


class _StreamTask(BatchedTask):
    """A stream of `length` uniform random symbols per episode, shown one-hot, one per step."""

    def __init__(self, n: int, num_symbols: int, length: int) -> None:
        super().__init__(n)
        self.num_symbols = positive_int("num_symbols", num_symbols, minimum=2)
        self.length = positive_int("length", length)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.num_symbols,), dtype=np.float32)
        self.action_space = spaces.Discrete(self.num_symbols)
        self.symbols = np.zeros((n, self.length), dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)
        self.correct = np.zeros(n, dtype=np.int64)

    def reset(self, rng: np.random.Generator, mask: np.ndarray) -> None:
        k = int(mask.sum())
        self.symbols[mask] = rng.integers(0, self.num_symbols, size=(k, self.length))
        self.t[mask] = 0
        self.correct[mask] = 0

    def observe(self) -> np.ndarray:
        t = np.minimum(self.t, self.length - 1)
        current = self.symbols[np.arange(self.n), t]
        return np.eye(self.num_symbols, dtype=np.float32)[current]

    def target(self) -> tuple[np.ndarray, np.ndarray]:
        """The right answer at the current step, and whether this step is scored."""
        raise NotImplementedError

    def scored_steps(self) -> int:
        raise NotImplementedError

    def step(
        self, rng: np.random.Generator, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        answer, scored = self.target()
        right = scored & (actions.astype(np.int64) == answer)
        self.correct += right
        rewards = right.astype(np.float32) / self.scored_steps()
        self.t = np.minimum(self.t + 1, self.length)
        terminated = self.t >= self.length
        success = (self.correct == self.scored_steps()).astype(np.float32)
        return rewards, terminated, success

    def render(self, index: int) -> np.ndarray:
        """Left, the answer wanted now (dark when this step is not scored); right, the symbols
        shown so far, the current one raised; below, the share of right answers (green) and
        wrong ones (red) of the episode's scored steps."""
        colours = symbol_colours(self.num_symbols)
        t = int(self.t[index])
        current = min(t, self.length - 1)
        shown = min(self.length, SHOWN)
        first = max(0, current - shown + 1)
        width = (shown + 2) * CELL
        frame = np.full((4 * CELL, width, 3), 40, dtype=np.uint8)
        answer, scored = self.target()
        if scored[index]:
            frame[CELL // 2 : 2 * CELL + CELL // 2, :CELL] = colours[answer[index]]
        for k in range(first, current + 1):
            left = (k - first + 2) * CELL
            top = 0 if k == current else CELL  # the symbol the agent sees now stands out
            frame[top : 2 * CELL, left + 1 : left + CELL - 1] = colours[self.symbols[index, k]]
        # The scored steps are the last `scored_steps()` of the episode.
        answered = max(0, self.scored_steps() - (self.length - t))
        right = int(self.correct[index]) * width // self.scored_steps()
        wrong = (answered - int(self.correct[index])) * width // self.scored_steps()
        frame[3 * CELL :, :right] = (60, 200, 60)
        frame[3 * CELL :, right : right + wrong] = (220, 30, 30)
        return frame


class RepeatFirstTask(_StreamTask):
    """RepeatFirst dynamics for n copies (see `RepeatFirstEnv`)."""

    def __init__(self, n: int, num_symbols: int = 4, length: int = 20) -> None:
        super().__init__(n, num_symbols, length)

    def target(self) -> tuple[np.ndarray, np.ndarray]:
        return self.symbols[:, 0], self.t < self.length

    def scored_steps(self) -> int:
        return self.length


class RepeatPreviousTask(_StreamTask):
    """RepeatPrevious dynamics for n copies (see `RepeatPreviousEnv`)."""

    def __init__(self, n: int, num_symbols: int = 4, delay: int = 4, length: int = 32) -> None:
        self.delay = positive_int("delay", delay)
        length = positive_int("length", length)
        if self.delay >= length:
            raise ValueError(f"delay ({delay}) must be smaller than length ({length})")
        super().__init__(n, num_symbols, length)

    def target(self) -> tuple[np.ndarray, np.ndarray]:
        back = np.maximum(self.t - self.delay, 0)
        answer = self.symbols[np.arange(self.n), np.minimum(back, self.length - 1)]
        return answer, (self.t >= self.delay) & (self.t < self.length)

    def scored_steps(self) -> int:
        return self.length - self.delay


class RepeatFirstEnv(TaskEnv):
    """Repeat the first symbol of a stream, at every step.

    ## Description
    Each step shows a random symbol (one of `num_symbols`). At every step the agent must answer
    with the symbol shown at the first step of the episode, so it must hold it for `length` steps.

    ## Action Space
    `Discrete(num_symbols)`: the answer.

    ## Observation Space
    `Box(0, 1, (num_symbols,), float32)`: the current symbol, one-hot.

    ## Rewards
    +1 / `length` per right answer, so the optimal return is 1. A memoryless policy is right at
    the first step and otherwise by chance: its best expected return is
    1/length + (1 - 1/length) / num_symbols (0.2875 for the defaults).

    ## Starting State
    The `length` symbols are drawn uniformly and independently at reset.

    ## Episode End
    Terminated after `length` steps (the env ends its own episodes; no registered time limit).
    `info["success"]` is 1.0 when every answer was right.

    ## Arguments
    - `num_symbols` (int >= 2, default 4)
    - `length` (int >= 1, default 20)
    - `render_mode`: `"rgb_array"` draws the symbols shown so far as coloured squares (the
      current one raised; the last 48 when the stream is longer), the answer wanted now
      at the left, and a bar of the right (green) and wrong (red) answers so far.

    ## Version History
    - v0: initial version; `rgb_array` rendering added later (the dynamics are unchanged).
    """

    task_class = RepeatFirstTask
    metadata: ClassVar[dict[str, Any]] = RENDERABLE


class RepeatFirstVectorEnv(TaskVectorEnv):
    """`num_envs` copies of `RepeatFirstEnv` in one numpy call."""

    task_class = RepeatFirstTask
    metadata: ClassVar[dict[str, Any]] = {**TaskVectorEnv.metadata, **RENDERABLE}


class RepeatPreviousEnv(TaskEnv):
    """Repeat the symbol shown `delay` steps ago.

    ## Description
    Each step shows a random symbol (one of `num_symbols`). From step `delay` on, the agent must
    answer with the symbol shown `delay` steps earlier: a sliding memory of the last `delay`
    symbols.

    ## Action Space
    `Discrete(num_symbols)`: the answer.

    ## Observation Space
    `Box(0, 1, (num_symbols,), float32)`: the current symbol, one-hot.

    ## Rewards
    +1 / (`length` - `delay`) per right answer from step `delay` on (earlier answers are not
    scored), so the optimal return is 1. A memoryless policy answers by chance: 1 / num_symbols
    (0.25 for the defaults).

    ## Starting State
    The `length` symbols are drawn uniformly and independently at reset.

    ## Episode End
    Terminated after `length` steps (no registered time limit). `info["success"]` is 1.0 when
    every scored answer was right.

    ## Arguments
    - `num_symbols` (int >= 2, default 4)
    - `delay` (int >= 1, default 4, smaller than `length`)
    - `length` (int, default 32)
    - `render_mode`: `"rgb_array"` draws the symbols shown so far as coloured squares (the
      current one raised; the last 48 when the stream is longer), the answer wanted now
      at the left, and a bar of the right (green) and wrong (red) answers so far.

    ## Version History
    - v0: initial version; `rgb_array` rendering added later (the dynamics are unchanged).
    """

    task_class = RepeatPreviousTask
    metadata: ClassVar[dict[str, Any]] = RENDERABLE


class RepeatPreviousVectorEnv(TaskVectorEnv):
    """`num_envs` copies of `RepeatPreviousEnv` in one numpy call."""

    task_class = RepeatPreviousTask
    metadata: ClassVar[dict[str, Any]] = {**TaskVectorEnv.metadata, **RENDERABLE}
