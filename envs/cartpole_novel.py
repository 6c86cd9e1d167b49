"""CartPole with the velocities hidden: they must be inferred from the history of positions."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv, CartPoleVectorEnv

_SEEN = [0, 2]  # cart position and pole angle; velocities (1, 3) are hidden


def _position_space(full: spaces.Box) -> spaces.Box:
    return spaces.Box(full.low[_SEEN], full.high[_SEEN], dtype=np.float32)


class CartPoleNoVelEnv(CartPoleEnv):
    """CartPole-v1 without velocities (the memory benchmark of sb3-contrib and the RL Zoo).

    ## Description
    Gymnasium's CartPole: push the cart left or right to keep the pole upright. Only the cart
    position and the pole angle are observed; their rates of change must be estimated from
    successive observations, so a memoryless policy balances poorly.

    ## Action Space
    `Discrete(2)`: 0 = push left, 1 = push right.

    ## Observation Space
    `Box((2,), float32)`:

    | index | meaning | min | max |
    |---|---|---|---|
    | 0 | cart position | -4.8 | 4.8 |
    | 1 | pole angle (rad) | -0.418 | 0.418 |

    ## Rewards
    +1 per step, as CartPole-v1. Optimal return: 500 (the time limit). A memoryless policy stays
    far below: in our tests a PPO agent without memory does not reach 200.

    ## Starting State
    As CartPole-v1: all four state variables uniform in [-0.05, 0.05].

    ## Episode End
    Terminated when the pole angle leaves +-12 degrees or the cart leaves +-2.4; truncated at
    500 steps (`max_episode_steps=500` at registration).

    ## Arguments
    As `CartPoleEnv` (`render_mode`, `sutton_barto_reward`).

    ## Version History
    - v0: initial version (CartPole-v1 dynamics).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.observation_space = _position_space(self.observation_space)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs[_SEEN], info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs[_SEEN], reward, terminated, truncated, info


class CartPoleNoVelVectorEnv(CartPoleVectorEnv):
    """Gymnasium's vectorised CartPole (NEXT_STEP autoreset) without velocities."""

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(num_envs=num_envs, **kwargs)
        self.single_observation_space = _position_space(self.single_observation_space)
        self.observation_space = spaces.Box(
            np.tile(self.single_observation_space.low, (num_envs, 1)),
            np.tile(self.single_observation_space.high, (num_envs, 1)),
            dtype=np.float32,
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs[:, _SEEN], info

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs[:, _SEEN], reward, terminated, truncated, info
