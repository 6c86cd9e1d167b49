"""Action masks, found where Gymnasium and SB3 users already put them, with no flag to set.

Three conventions, looked for in this order at every step (the first one present wins):

1. `info["action_mask"]` of the vector env's `reset` and `step` (Gymnasium's own envs, e.g. Taxi);
2. an `action_mask` entry of a Dict observation (PettingZoo's and RLlib's convention): the
   entry is taken out of the observation, and the policy is built on the observation space
   without it (`policy_observation_space`);
3. an `action_masks()` method (sb3-contrib's `MaskablePPO` convention): of the vector env
   itself (a native vector env, [n, sum(nvec)]), else of each copy through the vector env's
   `call("action_masks")` (`SyncVectorEnv`, `AsyncVectorEnv`).

A mask is bool [n, sum(nvec)] (Discrete: [n, n_actions]), True where the action is legal; an env
with none of the three gets None, and then the policy computes nothing for masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from agent.environment.wrappers import EnvError

MASK_KEY = "action_mask"
"""The info key and Dict observation entry that hold an action mask."""


class MaskError(EnvError):
    """An env offered a step at which no action is legal."""


def mask_size(action_space: spaces.Space) -> int | None:
    """sum(nvec) of a Discrete or MultiDiscrete action space; None for other spaces."""
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.MultiDiscrete):
        return int(np.sum(action_space.nvec))
    return None


def policy_observation_space(space: spaces.Space) -> spaces.Space:
    """The observation space the policy sees: `space` without a Dict's `action_mask` entry."""
    if isinstance(space, spaces.Dict) and MASK_KEY in space.spaces:
        return spaces.Dict({k: s for k, s in space.spaces.items() if k != MASK_KEY})
    return space


def split_observation(obs: Any) -> tuple[Any, np.ndarray | None]:
    """(the observation without its `action_mask` entry, that entry or None)."""
    if isinstance(obs, dict) and MASK_KEY in obs:
        return {k: v for k, v in obs.items() if k != MASK_KEY}, np.asarray(obs[MASK_KEY])
    return obs, None


def check_masks(
    mask: np.ndarray, action_space: spaces.Space, env_id: str | None, step: int | None
) -> None:
    """Raise `MaskError` naming the env and the step (when given) when a row of `mask`
    [n, sum(nvec)] leaves no legal action (in some dimension of a MultiDiscrete)."""
    nvec = [mask.shape[-1]]
    if isinstance(action_space, spaces.MultiDiscrete):
        nvec = [int(n) for n in action_space.nvec]
    offsets = np.cumsum([0, *nvec[:-1]])
    legal = np.logical_or.reduceat(mask, offsets, axis=-1).all(axis=-1)
    if not legal.all():
        rows = np.flatnonzero(~legal).tolist()
        at = "" if step is None else f" at step {step}"
        raise MaskError(
            f"{env_id or 'the env'}: no legal action{at} in env copies {rows} "
            "(its action mask is all False)"
        )


class MaskSource:
    """The action masks of one vector env, step by step (see the module docstring for where
    they come from and which convention wins).

    `split(obs, infos)` returns the observation the policy takes (without a Dict's
    `action_mask` entry unless `keep_entry`) and the masks [n, sum(nvec)]
    (bool) or None. `ignored` rows (the reset steps of NEXT_STEP autoreset, whose action the
    env ignores) are all legal: the method of an env whose episode just ended may allow nothing.
    """

    def __init__(
        self,
        env: Any,
        action_space: spaces.Space,
        env_id: str | None = None,
        keep_entry: bool = False,
    ) -> None:
        self.keep_entry = keep_entry
        """Leave a Dict observation's `action_mask` entry in the observation returned."""
        self.size = mask_size(action_space)
        self.action_space = action_space
        self.env_id = env_id
        self._method = _find_method(env) if self.size is not None else None

    def split(
        self,
        obs: Any,
        infos: dict[str, Any],
        step: int,
        ignored: np.ndarray | None = None,
    ) -> tuple[Any, np.ndarray | None]:
        policy_obs, from_obs = split_observation(obs)
        if not self.keep_entry:
            obs = policy_obs
        if self.size is None:
            return obs, None
        mask = None
        if MASK_KEY in infos:
            mask = np.asarray(infos[MASK_KEY], dtype=bool)
            present = infos.get(f"_{MASK_KEY}")
            if present is not None:  # copies that gave no mask allow everything
                mask = np.where(np.asarray(present)[:, None], mask, True)
        elif from_obs is not None:
            mask = from_obs.astype(bool)
        elif self._method is not None:
            mask = np.asarray(self._method(), dtype=bool)
            if mask.ndim == 1:  # one copy's method
                mask = mask[None]
        if mask is None:
            return obs, None
        mask = mask.reshape(mask.shape[0], self.size)
        if ignored is not None and ignored.any():
            mask = np.where(ignored[:, None], True, mask)
        check_masks(mask, self.action_space, self.env_id, step)
        return obs, mask


def _find_method(env: Any) -> Any:
    """A function returning all copies' masks from an `action_masks()` method: the vector
    env's own (a native one), or each copy's through `call`; None when there is none."""
    chain = [env]
    while hasattr(chain[-1], "env"):
        chain.append(chain[-1].env)
    for layer in chain:
        if callable(getattr(type(layer), "action_masks", None)):
            return layer.action_masks
    for layer in chain:
        if _copies_have_method(layer):
            return lambda layer=layer: np.stack(layer.call("action_masks"))
    return None


def _copies_have_method(layer: Any) -> bool:
    """Whether the copies of a Gymnasium vector env have an `action_masks` method: asked of
    `SyncVectorEnv`'s first copy, or of one copy made from `AsyncVectorEnv`'s factory (a failed
    `call` would shut its workers down)."""
    if not callable(getattr(type(layer), "call", None)):
        return False
    if getattr(layer, "envs", None):
        return bool(layer.envs[0].has_wrapper_attr("action_masks"))
    if getattr(layer, "env_fns", None):
        probe = layer.env_fns[0]()
        try:
            return bool(probe.has_wrapper_attr("action_masks"))
        finally:
            probe.close()
    return False
