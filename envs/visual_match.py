"""Visual match: remember a colour seen in pixels, through distractor frames."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from envs.batched import RENDERABLE, BatchedTask, TaskEnv, TaskVectorEnv, positive_int

SIZE = 8
PALETTE = np.array(
    [
        [230, 25, 75], [60, 180, 75], [0, 130, 200], [255, 225, 25],
        [145, 30, 180], [245, 130, 48], [70, 240, 240], [240, 50, 230],
    ],
    dtype=np.uint8,
)  # fmt: skip


class VisualMatchTask(BatchedTask):
    """VisualMatch dynamics for n copies (see `VisualMatchEnv`)."""

    def __init__(self, n: int, delay: int = 10, num_colors: int = 4) -> None:
        super().__init__(n)
        self.delay = positive_int("delay", delay, minimum=0)
        self.num_colors = positive_int("num_colors", num_colors, minimum=2)
        if self.num_colors > len(PALETTE):
            raise ValueError(f"num_colors must be at most {len(PALETTE)}, got {num_colors}")
        self.observation_space = spaces.Box(0, 255, shape=(SIZE, SIZE, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(self.num_colors)
        self.t = np.zeros(n, dtype=np.int64)
        self.colour = np.zeros(n, dtype=np.int64)
        self.frames = np.zeros((n, SIZE, SIZE, 3), dtype=np.uint8)

    def _draw(self, rng: np.random.Generator) -> None:
        """Frames for the current step: the colour, distractor noise, or the query pattern."""
        show = self.t == 0
        query = self.t == self.delay + 1
        noise = rng.integers(0, 256, size=(self.n, SIZE, SIZE, 3), dtype=np.uint8)
        self.frames = np.where(
            show[:, None, None, None], PALETTE[self.colour][:, None, None, :], noise
        )
        if query.any():
            checker = (np.add.outer(np.arange(SIZE), np.arange(SIZE)) % 2 * 255).astype(np.uint8)
            self.frames[query] = checker[None, :, :, None]

    def reset(self, rng: np.random.Generator, mask: np.ndarray) -> None:
        self.t[mask] = 0
        self.colour[mask] = rng.integers(0, self.num_colors, size=int(mask.sum()))
        self._draw(rng)

    def observe(self) -> np.ndarray:
        return self.frames

    def step(
        self, rng: np.random.Generator, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        at_query = self.t >= self.delay + 1
        correct = actions.astype(np.int64) == self.colour
        rewards = (at_query & correct).astype(np.float32)
        self.t = np.minimum(self.t + 1, self.delay + 2)
        self._draw(rng)
        return rewards, at_query, correct.astype(np.float32)

    def render(self, index: int) -> np.ndarray:
        return np.repeat(np.repeat(self.frames[index], 16, axis=0), 16, axis=1)


class VisualMatchEnv(TaskEnv):
    """Visual match: a colour shown at the start, distractor frames, then pick the colour.

    ## Description
    The first frame is filled with one of `num_colors` colours. Then come `delay` frames of
    random pixel noise, then a black-and-white checkerboard: the query. The action at the query
    names the colour of the first frame. Observations are pixels, so the agent needs a
    convolutional encoder and a memory.

    ## Action Space
    `Discrete(num_colors)`: the index of the colour in the palette.

    ## Observation Space
    `Box(0, 255, (8, 8, 3), uint8)`: an RGB image, channels last.

    ## Rewards
    +1 for the right colour at the query, 0 otherwise. Optimal return: 1. A memoryless policy
    guesses: 1 / num_colors (0.25 for the defaults).

    ## Starting State
    The colour is drawn uniformly at reset; distractor pixels are uniform random.

    ## Episode End
    Terminated after the answer: every episode lasts `delay + 2` steps (no registered time
    limit). `info["success"]` is 1.0 for the right colour.

    ## Arguments
    - `delay` (int >= 0, default 10): distractor frames between the colour and the query.
    - `num_colors` (int from 2 to 8, default 4).
    - `render_mode`: `"rgb_array"` gives the current frame, scaled up 16 times.

    ## Version History
    - v0: initial version.
    """

    task_class = VisualMatchTask
    metadata: ClassVar[dict[str, Any]] = RENDERABLE


class VisualMatchVectorEnv(TaskVectorEnv):
    """`num_envs` copies of `VisualMatchEnv` in one numpy call."""

    task_class = VisualMatchTask
    metadata: ClassVar[dict[str, Any]] = {**TaskVectorEnv.metadata, **RENDERABLE}
