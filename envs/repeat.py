"""Symbol-stream tasks: repeat the first symbol, or the symbol shown `delay` steps ago."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from envs.batched import BatchedTask, TaskEnv, TaskVectorEnv, positive_int


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

    ## Version History
    - v0: initial version.
    """

    task_class = RepeatFirstTask


class RepeatFirstVectorEnv(TaskVectorEnv):
    """`num_envs` copies of `RepeatFirstEnv` in one numpy call."""

    task_class = RepeatFirstTask


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

    ## Version History
    - v0: initial version.
    """

    task_class = RepeatPreviousTask


class RepeatPreviousVectorEnv(TaskVectorEnv):
    """`num_envs` copies of `RepeatPreviousEnv` in one numpy call."""

    task_class = RepeatPreviousTask
