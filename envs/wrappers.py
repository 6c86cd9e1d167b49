"""Wrappers for memory tasks.

`PreviousAction` feeds the action just taken back as part of the next observation, as the
POPGym paper's agents had it (Morad et al., ICLR 2023) and as meta-RL agents do (RL^2): a
policy that samples its actions cannot otherwise tell which arm it pulled or which card it
turned. From the command line:

    python train.py --env popgym-MultiarmedBanditEasy-v0 --wrapper envs.wrappers:PreviousAction
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

KEY = "prev_action"


def null_action(space: spaces.Space) -> Any:
    """The action seen before an episode's first step: the lowest action of `space` (popgym's
    choice for discrete spaces), zeros for Box where zero is allowed."""
    if isinstance(space, spaces.Discrete):
        return int(space.start)
    if isinstance(space, spaces.MultiDiscrete):
        return np.asarray(space.start, dtype=space.dtype).copy()
    if isinstance(space, spaces.MultiBinary):
        return np.zeros(space.shape, dtype=space.dtype)
    if isinstance(space, spaces.Box):
        return np.clip(np.zeros(space.shape, dtype=space.dtype), space.low, space.high)
    raise ValueError(
        f"PreviousAction supports Discrete, MultiDiscrete, MultiBinary and Box actions, "
        f"not {type(space).__name__}"
    )


class PreviousAction(gym.Wrapper):
    """The observation becomes a Dict of the env's own (`obs`; a Dict observation keeps its
    keys) and the previous action (`prev_action`; `null_action` after a reset)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        inner, actions = env.observation_space, env.action_space
        self.null = null_action(actions)
        if isinstance(inner, spaces.Dict):
            if KEY in inner.spaces:
                raise ValueError(f"the observation already has a {KEY!r} key")
            self.observation_space = spaces.Dict({**inner.spaces, KEY: actions})
        else:
            self.observation_space = spaces.Dict({"obs": inner, KEY: actions})

    def observe(self, obs: Any, action: Any) -> dict[str, Any]:
        if isinstance(self.action_space, spaces.Discrete):
            action = int(action)
        else:
            action = np.asarray(action, dtype=self.action_space.dtype).copy()
        if isinstance(self.env.observation_space, spaces.Dict):
            return {**obs, KEY: action}
        return {"obs": obs, KEY: action}

    def reset(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self.observe(obs, self.null), info

    def step(self, action: Any) -> tuple[dict[str, Any], Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.observe(obs, action), reward, terminated, truncated, info
