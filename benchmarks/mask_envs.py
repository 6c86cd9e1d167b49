"""A masked task we did not write, made to need memory, and a wrapper that hides an env's masks:
the envs of benchmarks/masks.py (issue 30), registered with Gymnasium on import.

    python train.py --env benchmarks.mask_envs:TaxiDestination-v0
    python train.py --env Memory/CardMatch-v0 --wrapper benchmarks.mask_envs:HideMasks

`TaxiDestination-v0` is Gymnasium's Taxi (`TAXI`: v4, or v3 before it; its own action masks,
in `info["action_mask"]`; 200 steps) seen through a partial view: the taxi's row and column, the passenger's place (one of
the four stands or in the taxi) and the destination, each one-hot, with the destination shown at
the first step only and zero after it. Picking the passenger up and driving to them needs no
memory; dropping them at the right stand needs the destination remembered over the ride (tens of
steps). Taxi's rewards are unchanged: -1 a step, +20 for the delivery, -10 for a pickup or a
drop-off where it is not legal, which the mask rules out. A drop-off at a wrong stand is legal: the
passenger waits there, and a memoryless policy may pick them up again and try another stand.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import register, registry

from agent.environment.masks import MASK_KEY

TAXI = "Taxi-v4" if "Taxi-v4" in registry else "Taxi-v3"
"""Gymnasium's Taxi: v4 where it exists (v3, the same task with the same masks, is refused as
out of date there), v3 in Gymnasium releases before it (our floor's)."""
ROWS = COLS = 5
PLACES = 5  # the four stands, or in the taxi
STANDS = 4


class DestinationOnce(gym.Wrapper):
    """Taxi's state as one-hot row, column, passenger place and destination (19 entries), the
    destination zeroed after the first step; `info` (with Taxi's `action_mask`) passes through.

    Args:
        env: a Gymnasium Taxi env (its `unwrapped.decode` turns the state into its four parts).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        size = ROWS + COLS + PLACES + STANDS
        self.observation_space = spaces.Box(0.0, 1.0, shape=(size,), dtype=np.float32)

    def view(self, state: int, first: bool) -> np.ndarray:
        row, col, place, destination = self.env.unwrapped.decode(state)
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        obs[[row, ROWS + col, ROWS + COLS + place]] = 1.0
        if first:
            obs[ROWS + COLS + PLACES + destination] = 1.0
        return obs

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        state, info = self.env.reset(**kwargs)
        return self.view(state, first=True), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        state, reward, terminated, truncated, info = self.env.step(action)
        return self.view(state, first=False), reward, terminated, truncated, info


def make_taxi_destination(**kwargs: Any) -> gym.Env:
    """`gym.make(TAXI, **kwargs)` (with its 200-step limit) seen through `DestinationOnce`."""
    return DestinationOnce(gym.make(TAXI, **kwargs))


def taxi_masks(env: gym.Env) -> np.ndarray:
    """Taxi's legal actions in its current state (its public `action_mask`): sb3-contrib's
    `ActionMasker` takes this for `MaskablePPO`."""
    taxi = env.unwrapped
    return taxi.action_mask(taxi.s).astype(bool)


class HideMasks(gym.Wrapper):
    """The env without its action masks: `info["action_mask"]` is dropped and an `action_masks`
    method is hidden from `get_wrapper_attr` (what vector envs' `call` reach), so an agent that
    looks for masks finds none. For "the same agent without masks"."""

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return obs, {k: v for k, v in info.items() if k != MASK_KEY}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {k: v for k, v in info.items() if k != MASK_KEY}

    def get_wrapper_attr(self, name: str) -> Any:
        if name == "action_masks":
            raise AttributeError(f"{type(self).__name__} hides the env's action_masks")
        return super().get_wrapper_attr(name)

    def has_wrapper_attr(self, name: str) -> bool:
        return name != "action_masks" and super().has_wrapper_attr(name)


if "TaxiDestination-v0" not in registry:
    # No max_episode_steps: Taxi's own 200-step limit ends the episodes.
    register("TaxiDestination-v0", f"{__name__}:make_taxi_destination")
