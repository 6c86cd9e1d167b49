"""Pendulum with the angular velocity hidden, for continuous actions with memory."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.pendulum import PendulumEnv


class PendulumNoVelEnv(PendulumEnv):
    """Pendulum-v1 without the angular velocity.

    ## Description
    Gymnasium's Pendulum: apply torque to swing a pendulum up and keep it upright. Only the
    angle is observed (as cos and sin); the angular velocity must be inferred from history.

    ## Action Space
    `Box(-2, 2, (1,), float32)`: the torque.

    ## Observation Space
    `Box(-1, 1, (2,), float32)`:

    | index | meaning |
    |---|---|
    | 0 | cos(theta) |
    | 1 | sin(theta) |

    ## Rewards
    As Pendulum-v1: -(theta^2 + 0.1 thetadot^2 + 0.001 torque^2) per step, at most 0. Returns over
    200 steps: about -1200 for random torques; a good swing-up from a random start scores about
    -150 (0 is unreachable from most starts). Without velocity, a memoryless policy cannot damp the
    swing and stays far below that.

    ## Starting State
    As Pendulum-v1: angle uniform in [-pi, pi], angular velocity uniform in [-1, 1].

    ## Episode End
    Truncated at 200 steps (`max_episode_steps=200` at registration); never terminated.

    ## Arguments
    As `PendulumEnv` (`render_mode`, `g`).

    ## Version History
    - v0: initial version (Pendulum-v1 dynamics).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs[:2].astype(np.float32), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs[:2].astype(np.float32), reward, terminated, truncated, info
