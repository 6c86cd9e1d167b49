"""Play back cards in the order shown at the start, from a hand that only holds unplayed cards."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from envs.batched import RENDERABLE, BatchedTask, TaskEnv, TaskVectorEnv, positive_int
from envs.repeat import CELL, symbol_colours


class CardMatchTask(BatchedTask):
    """`num_cards` cards, a random target order shown at step 0, then one card played per step."""

    has_success = True

    def __init__(self, n: int, num_cards: int = 5) -> None:
        super().__init__(n)
        self.num_cards = N = positive_int("num_cards", num_cards, minimum=2)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(N * N + N,), dtype=np.float32)
        self.action_space = spaces.Discrete(N)
        self.order = np.zeros((n, N), dtype=np.int64)
        self.held = np.zeros((n, N), dtype=bool)
        self.t = np.zeros(n, dtype=np.int64)
        self.correct = np.zeros(n, dtype=np.int64)

    def reset(self, rng: np.random.Generator, mask: np.ndarray) -> None:
        k = int(mask.sum())
        self.order[mask] = rng.permuted(np.tile(np.arange(self.num_cards), (k, 1)), axis=1)
        self.held[mask] = True
        self.t[mask] = 0
        self.correct[mask] = 0

    def observe(self) -> np.ndarray:
        N = self.num_cards
        obs = np.zeros((self.n, N * N + N), dtype=np.float32)
        first = self.t == 0
        if first.any():  # the order, one one-hot row per position, only at step 0
            obs[first, : N * N] = np.eye(N, dtype=np.float32)[self.order[first]].reshape(-1, N * N)
        obs[np.arange(self.n), N * N + np.minimum(self.t, N - 1)] = 1.0
        return obs

    def action_masks(self) -> np.ndarray:
        """[n, num_cards]: the cards each copy still holds."""
        return self.held.copy()

    def step(
        self, rng: np.random.Generator, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.arange(self.n)
        card = actions.astype(np.int64).reshape(self.n)
        t = np.minimum(self.t, self.num_cards - 1)
        legal = self.held[rows, card]
        right = legal & (card == self.order[rows, t])
        self.correct += right
        self.held[rows[legal], card[legal]] = False
        self.t = self.t + 1
        terminated = ~legal | (self.t >= self.num_cards)
        rewards = right.astype(np.float32) / self.num_cards
        success = (self.correct == self.num_cards).astype(np.float32)
        return rewards, terminated, success

    def render(self, index: int) -> np.ndarray:
        """Top, the target order, each card in its colour; middle, the hand (played cards
        dark); below, the share of cards played in place (green) and out of place (red)."""
        N = self.num_cards
        colours = symbol_colours(N)
        frame = np.full((3 * CELL + CELL // 2, N * CELL, 3), 40, dtype=np.uint8)
        for position, card in enumerate(self.order[index]):
            frame[1 : CELL - 1, position * CELL + 1 : (position + 1) * CELL - 1] = colours[card]
        for card in np.flatnonzero(self.held[index]):
            frame[CELL + 1 : 2 * CELL - 1, card * CELL + 1 : (card + 1) * CELL - 1] = colours[card]
        right = int(self.correct[index]) * CELL
        wrong = (int(min(self.t[index], N)) - int(self.correct[index])) * CELL
        frame[2 * CELL + CELL // 2 :, :right] = (60, 200, 60)
        frame[2 * CELL + CELL // 2 :, right : right + wrong] = (220, 30, 30)
        return frame


class CardMatchEnv(TaskEnv):
    """Play your cards back in the order shown at the start: memory with action masks.

    ## Description
    The agent holds `num_cards` cards, numbered 0 to `num_cards - 1`. At step 0 it is shown a
    random order of all of them (the target); then it plays one card per step, for `num_cards`
    steps, and each card played in its target position scores. Only cards still held may be
    played: the env gives the legal cards with an `action_masks()` method (sb3-contrib's
    `MaskablePPO` convention), so a masked agent never plays a card twice. The hand is not in
    the observation, and the order is shown only once: the agent must remember it.

    ## Action Space
    `Discrete(num_cards)`: the card to play. Legal: the cards not played yet (`action_masks()`).

    ## Observation Space
    `Box(0, 1, (num_cards**2 + num_cards,), float32)`:

    | Index                            | Observation                                            |
    |----------------------------------|--------------------------------------------------------|
    | `i * num_cards + c` (i, c < N)   | 1 if card c is the i-th of the target order; step 0 only |
    | `num_cards**2 + t`               | 1 at step t (one-hot of the step)                      |

    ## Rewards
    +1 / `num_cards` for each card played in its target position: the optimal return is 1.
    The best memoryless policy gets exactly 2 / `num_cards` (0.4 for the defaults). Why: after
    step 0 the observation is the step number alone, so a memoryless policy's plays at steps
    t >= 1 depend on the target only through its step-0 play c0 (the hand it leaves); given
    c0, the cards after target[0] are a uniform random order of the other N - 1 cards, so each
    later play is right with probability at most 1 / (N - 1) whatever it is. Step 0 scores 1 at
    most (play target[0], in view), so the expected count is at most 1 + (N - 1) / (N - 1) = 2,
    which playing target[0] and then any held card reaches.

    ## Starting State
    All cards held; the target order is a uniform random permutation.

    ## Episode End
    Terminated after `num_cards` plays, or at once when a card that is no longer held is played
    (only an agent that ignores the mask can do that; that play scores 0). `info["success"]` is
    1.0 when every card was played in its position.

    ## Arguments
    - `num_cards` (int >= 2, default 5)

    ## Version History
    - v0: initial version.
    """

    task_class = CardMatchTask
    metadata: ClassVar[dict[str, Any]] = RENDERABLE

    def action_masks(self) -> np.ndarray:
        """[num_cards] bool: the cards still held (legal to play)."""
        return self.task.action_masks()[0]


class CardMatchVectorEnv(TaskVectorEnv):
    """`num_envs` copies of `CardMatchEnv` in one numpy call."""

    task_class = CardMatchTask
    metadata: ClassVar[dict[str, Any]] = {**TaskVectorEnv.metadata, **RENDERABLE}

    def action_masks(self) -> np.ndarray:
        """[num_envs, num_cards] bool: the cards each copy still holds."""
        return self.task.action_masks()
