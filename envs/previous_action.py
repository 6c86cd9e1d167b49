"""The previous action as part of each observation.

`PreviousAction` feeds the action just taken back with the next observation, as the POPGym
paper's agents had it (Morad et al., ICLR 2023) and as meta-RL agents do (RL^2): a policy that
samples its actions cannot otherwise tell which arm it pulled or which card it turned.

    python train.py --env popgym-MultiarmedBanditEasy-v0 \
        --wrapper envs.previous_action:PreviousAction
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

KEY = "prev_action"
"""The observation's key for the previous action."""


def null_action(space: spaces.Space) -> Any:
    """The action shown before an episode's first step, as popgym's `PreviousAction` picks it:
    zero where zero is an action of `space`, else its lowest action."""
    if isinstance(space, spaces.Discrete):
        return 0 if space.contains(0) else int(space.start)
    if isinstance(space, spaces.MultiDiscrete | spaces.MultiBinary | spaces.Box):
        zeros = np.zeros(space.shape, dtype=space.dtype)
        if space.contains(zeros):
            return zeros
        return np.array(space.start if isinstance(space, spaces.MultiDiscrete) else space.low)
    raise ValueError(
        f"PreviousAction supports Discrete, MultiDiscrete, MultiBinary and Box actions, "
        f"not {type(space).__name__}"
    )


class PreviousAction(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """The observation becomes a Dict of the env's own (`obs`; a Dict observation keeps its keys,
    in order) and the action just taken (`prev_action`; `null_action` after a reset, so the
    first step looks like one after the null action: popgym's `Antialias` flag is not added).

    For tasks where the agent must know its own sampled action: bandits, card and board games.
    A Box action is shown clipped to its bounds, as the env applies it. The Dict observation
    needs `MultiInputLstmPolicy` in SB3-style code, and rules out `normalize_obs` (Box only).
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        inner, actions = env.observation_space, env.action_space
        self.null = null_action(actions)
        self.keeps_keys = isinstance(inner, spaces.Dict)
        parts = inner.spaces if self.keeps_keys else {"obs": inner}
        if KEY in parts:
            raise ValueError(f"the observation already has a {KEY!r} key")
        self.observation_space = spaces.Dict(OrderedDict([*parts.items(), (KEY, actions)]))

    def observe(self, obs: Any, action: Any) -> dict[str, Any]:
        """The observation `obs` of the env with `action`, the action that led to it."""
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            action = int(np.asarray(action).reshape(()))
        elif isinstance(space, spaces.Box):
            action = np.clip(action, space.low, space.high).astype(space.dtype)
        else:
            action = np.array(action, dtype=space.dtype)  # a copy: the caller may reuse its array
        return {**(obs if self.keeps_keys else {"obs": obs}), KEY: action}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self.observe(obs, self.null), info

    def step(self, action: Any) -> tuple[dict[str, Any], Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.observe(obs, action), reward, terminated, truncated, info
