"""Stable-Baselines3's callbacks and logger on this agent's training loop.

`RecurrentPPO.learn` takes two kinds of callback. Ours is a function of the model, called after
every update (returning False stops). SB3's are `BaseCallback` objects (`CheckpointCallback`,
`EvalCallback`, a `CallbackList`, a list of them) or functions of `(locals, globals)`, called as
SB3's `collect_rollouts` calls them: `on_rollout_start`, `on_step` after every vector-env step
(False stops collection at once, and `learn` returns without training on the partial rollout, as
in SB3), `on_rollout_end`. Their `locals` carry SB3's names (`new_obs`, `rewards`, `dones`,
per-env `infos` with `episode` and `terminal_observation`). Their `model.logger` is SB3's
`Logger`, whose records reach the model's TensorBoard writer (and the terminal with `verbose=1`).
"""

from __future__ import annotations

import inspect
import numbers
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    ConvertCallback,
    EvalCallback,
)
from stable_baselines3.common.logger import HumanOutputFormat, KVWriter, Logger
from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

from agent.algorithm.sb3_envs import STATS_KEY
from agent.config import ConfigError
from agent.networks.observations import tree_map


def split_callback(
    callback: Any,
) -> tuple[Callable[[Any], bool | None] | None, BaseCallback | None]:
    """(our after-update callback, SB3's callback): which of the two `callback` is, told apart
    by type and, for a plain function, by signature (ours takes the model; SB3's takes `locals`
    and `globals`). A list becomes SB3's `CallbackList`, as in SB3. Raises `ConfigError` for an
    `EvalCallback` whose eval env would normalise observations a second time."""
    if callback is None:
        return None, None
    if isinstance(callback, list):
        callback = CallbackList([_as_sb3(c) for c in callback])
    elif not isinstance(callback, BaseCallback):
        if not _takes_locals_and_globals(callback):
            return callback, None
        callback = ConvertCallback(callback)
    for each in _nested(callback):
        if isinstance(each, EvalCallback):
            _check_eval_env(each.eval_env)
    return None, callback


def _nested(callback: BaseCallback) -> list[BaseCallback]:
    """`callback` and the callbacks it calls (a list's, an `EvalCallback`'s)."""
    found = [callback]
    children = list(getattr(callback, "callbacks", []))
    children += [getattr(callback, name, None) for name in ("callback", "callback_on_new_best")]
    for child in children:
        if isinstance(child, BaseCallback):
            found += _nested(child)
    return found


def _check_eval_env(env: Any) -> None:
    """Refuse an eval env that normalises observations: the model takes raw ones."""
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, VecNormalize) and env.norm_obs:
            raise ConfigError(
                "EvalCallback's eval_env normalises observations (VecNormalize), and this model "
                "takes raw ones (its normalize_obs statistics are inside it, shared with the "
                "training VecNormalize): give the eval env without VecNormalize, or with "
                "norm_obs=False"
            )
        env = env.venv


def _as_sb3(callback: Any) -> BaseCallback:
    if isinstance(callback, BaseCallback):
        return callback
    if callable(callback) and _takes_locals_and_globals(callback):
        return ConvertCallback(callback)
    raise ConfigError(
        f"a list of callbacks holds SB3 callbacks (BaseCallback objects, or functions of "
        f"(locals, globals)), not {callback!r}: give a function of the model on its own"
    )


def _takes_locals_and_globals(function: Any) -> bool:
    """True for a function of exactly two required positional arguments: SB3's `(locals,
    globals)`; ours takes one, the model."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in parameters if p.kind in positional and p.default is p.empty]
    return len(required) == 2


def on_step(callback: BaseCallback, step: dict[str, Any]) -> bool:
    """Hand the rollout step's variables (`collect_rollout`'s locals) to `callback` under SB3's
    names, then call its `on_step`; False asks to stop."""
    callback.update_locals(sb3_locals(step))
    return callback.on_step()


def sb3_locals(step: dict[str, Any]) -> dict[str, Any]:
    """SB3's `collect_rollouts` variables, from ours. `infos` is a list of per-env dicts; an env
    whose episode ended at this step has `episode` (r, l, t), `terminal_observation` (with
    NEXT_STEP autoreset, also its `new_obs`) and `TimeLimit.truncated`."""
    terminated, truncated = step["terminated"], step["truncated"]
    dones = terminated | truncated
    new_obs = step["next_obs"]
    infos = per_env_infos(step["infos"], len(dones))
    for i in np.flatnonzero(dones):
        info = infos[i]
        if "episode" not in info and STATS_KEY in info:
            info["episode"] = info[STATS_KEY]
        info["terminal_observation"] = tree_map(lambda x, i=i: x[i], new_obs)
        info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
    return {
        "self": step["self"],
        "env": step["env"],
        "rollout_buffer": step["buffer"],
        "n_rollout_steps": step["cfg"].n_steps,
        "n_steps": step["t"] + 1,
        "actions": step["env_actions"],
        "clipped_actions": step["env_actions"],
        "values": step["step"].values,
        "log_probs": step["step"].log_prob,
        "new_obs": new_obs,
        "rewards": step["rewards"],
        "dones": dones,
        "infos": infos,
    }


def per_env_infos(infos: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Gymnasium's vector `infos` (a dict of arrays, `_key` marking the envs that set `key`) as
    SB3's list of one dict per env."""
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get(f"_{key}")
        values = per_env_infos(value, n) if isinstance(value, dict) else value
        for i in range(n):
            if mask is None or mask[i]:
                out[i][key] = values[i]
    return out


# -------------------------------------------------------------------------------- logger ---


class TensorBoardScalars(KVWriter):
    """An SB3 logger output that writes numbers to the model's TensorBoard writer (nothing
    without `tensorboard_log`), at the step `Logger.dump` is given."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def write(
        self,
        key_values: dict[str, Any],
        key_excluded: dict[str, tuple[str, ...]],
        step: int = 0,
    ) -> None:
        writer = self.model.tensorboard_writer()
        if writer is None:
            return
        for key, value in key_values.items():
            excluded = key_excluded.get(key)
            if excluded is not None and "tensorboard" in excluded:
                continue
            if isinstance(value, numbers.Real | np.number) and not isinstance(value, bool):
                writer.add_scalar(key, float(value), step)

    def close(self) -> None:
        """The writer is the model's: `RecurrentPPO.close` closes it."""


def make_logger(model: Any, verbose: int) -> Logger:
    """SB3's `Logger` for `model`: its TensorBoard writer, and SB3's table on stdout when
    `verbose` >= 1."""
    outputs: list[KVWriter] = [TensorBoardScalars(model)]
    if verbose >= 1:
        outputs.insert(0, HumanOutputFormat(sys.stdout))
    return Logger(folder=None, output_formats=outputs)


def dump_iteration(logger: Logger, logs: dict[str, float], num_timesteps: int, iteration: int):
    """Print an iteration's statistics as SB3's table (they are already in TensorBoard), with
    whatever callbacks recorded since the last dump (which goes to TensorBoard too)."""
    for key, value in logs.items():
        logger.record(key, value, exclude="tensorboard")
    logger.record("time/iterations", iteration, exclude="tensorboard")
    logger.record("time/total_timesteps", num_timesteps, exclude="tensorboard")
    logger.dump(num_timesteps)
