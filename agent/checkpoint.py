"""Checkpoints as data: what a model's checkpoint holds, and the file that holds it.

A checkpoint is a `torch.save` file of a dict holding only tensors, numbers and strings, so
`torch.load(weights_only=True)` can read it and refuses anything that would run code. It holds
the config, env spec and spaces (JSON), and the training state: weights, optimizer, counters,
random streams, normalisers and, when the env can save its state, where the rollout stands
(the envs, the recurrent memory, the episode statistics), so that a resumed run continues the
same episodes and trains to the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv

from agent.config import PPOConfig
from agent.env_state import get_env_state, set_env_state
from agent.observations import tree_map
from agent.spaces_json import space_from_dict, space_to_dict
from agent.vec_env import EnvError

if TYPE_CHECKING:
    from agent.ppo import RecurrentPPO

FORMAT = "memory-ppo"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, unsafe, or of another format or version."""


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write `payload` to `path` atomically: a temporary file in the same folder, then a rename.

    A crash at any moment leaves either the previous file or the new one, never a partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; raise `CheckpointError` with one line on
    any problem (missing, truncated, corrupt, carrying code, other format or version)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"cannot read checkpoint {path}: corrupt or truncated (not a zip archive)"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # PyTorch's message is several lines with terminal escapes and advice to load unsafely;
        # the name of the offending object is the part worth one line.
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(
            f"refused to load {path}: it holds a Python object{what} besides tensors and plain "
            "data, and loading it could run code"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"cannot read checkpoint {path}: corrupt or truncated ({first[:200]})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this version reads {FORMAT_VERSION}"
        )
    return payload


# ------------------------------------------------------------------- a model's checkpoint ---


def model_payload(model: RecurrentPPO, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What `RecurrentPPO.save` writes: the metadata as JSON strings, then the training state."""
    return {
        "config": json.dumps(model.config.to_dict()),
        "env_spec": json.dumps(model.env_spec),
        "observation_space": json.dumps(space_to_dict(model.observation_space)),
        "action_space": json.dumps(space_to_dict(model.action_space)),
        "extra": json.dumps(extra or {}),
        **training_state(model),
    }


def training_state(model: RecurrentPPO) -> dict[str, Any]:
    """Everything that training changes, as data: weights, optimizer, counters, random streams,
    normalisers and (when the env can save its state) the rollout's position.
    `load_training_state` puts it back. The tensors may share memory with the model."""
    state: dict[str, Any] = {
        "policy": model.policy.state_dict(),
        "optimizer": model.optimizer.state_dict(),
        "num_timesteps": model.num_timesteps,
        "total_timesteps": model.total_timesteps,
        "n_updates": model.n_updates,
        "adaptive_lr": model.adaptive_lr,
        "torch_rng": torch.get_rng_state(),
        "generator_rng": model.generator.get_state(),
    }
    if model.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(model.device)
    if model.obs_normalizer is not None:
        state["obs_normalizer"] = model.obs_normalizer.state_dict()
    if model.reward_normalizer is not None:
        state["reward_normalizer"] = model.reward_normalizer.state_dict()
    rollout = rollout_state(model)
    if rollout is not None:
        state["rollout"] = rollout
    return state


def load_training_state(
    model: RecurrentPPO, state: dict[str, Any], restore_rollout: bool = True
) -> None:
    """Put back what `training_state` returned (with the rollout's position when
    `restore_rollout` and it was saved). Raises KeyError, ValueError, TypeError or RuntimeError
    when it does not fit `model`."""
    model.policy.load_state_dict(with_image_ranges(model.policy.state_dict(), state["policy"]))
    model.params.attach()
    model.optimizer.load_state_dict(model.params.optimizer_state(state["optimizer"]))
    model.num_timesteps = int(state["num_timesteps"])
    model.total_timesteps = int(state["total_timesteps"])
    model.n_updates = int(state["n_updates"])
    # Checkpoints from before the adaptive schedule start it afresh.
    model.adaptive_lr = float(state.get("adaptive_lr", model.config.learning_rate))
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and model.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], model.device)
    model.generator.set_state(state["generator_rng"])
    if model.obs_normalizer is not None:
        model.obs_normalizer.load_state_dict(state["obs_normalizer"])
    if model.reward_normalizer is not None:
        model.reward_normalizer.load_state_dict(state["reward_normalizer"])
    if restore_rollout and "rollout" in state:
        restore_rollout_state(model, state["rollout"])


def with_image_ranges(
    current: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """`saved`, with the image encoder's range as checkpoints before it had one worked: divided
    by 255 (`peak`), kept so (`observed`)."""
    legacy = {"peak": lambda x: torch.full_like(x, 255.0), "observed": torch.ones_like}
    filled = dict(saved)
    for key in current.keys() - saved.keys():
        name = key.rsplit(".", 1)[-1]
        if name in legacy:
            filled[key] = legacy[name](current[key])
    return filled


def rollout_state(model: RecurrentPPO) -> dict[str, Any] | None:
    """Where the envs and the memory stand between two rollouts, when the env can save its
    state (see `agent.env_state`); None otherwise."""
    if model.env is None or model._last_obs is None:
        return None
    env_state = get_env_state(model.env)
    if env_state is None:
        return None
    stats = model.episode_stats
    return {
        "env": env_state,
        "last_obs": tree_map(lambda x: torch.as_tensor(np.asarray(x)), model._last_obs),
        "memory": model._state.cpu(),
        "episode_start": model._episode_start.cpu(),
        "reset_step": model._reset_step.cpu(),
        "episode_returns": torch.tensor(list(stats.returns), dtype=torch.float64),
        "episode_lengths": torch.tensor(list(stats.lengths), dtype=torch.int64),
        "episode_successes": torch.tensor(list(stats.successes), dtype=torch.float64),
        "episodes": stats.episodes,
    }


def restore_rollout_state(model: RecurrentPPO, rollout: dict[str, Any]) -> None:
    """Undo `rollout_state`: the next `learn(reset_num_timesteps=False)` goes on from here."""
    set_env_state(model.env, rollout["env"])
    model._last_obs = tree_map(lambda x: x.numpy(), rollout["last_obs"])
    model._state = rollout["memory"].to(model.device)
    model._episode_start = rollout["episode_start"].to(model.device)
    model._reset_step = rollout["reset_step"].to(model.device)
    stats = model.episode_stats
    for window in (stats.returns, stats.lengths, stats.successes):
        window.clear()
    stats.returns.extend(rollout["episode_returns"].tolist())
    stats.lengths.extend(rollout["episode_lengths"].tolist())
    stats.successes.extend(rollout["episode_successes"].tolist())
    stats.episodes = int(rollout["episodes"])


def load_model(
    cls: type[RecurrentPPO],
    path: str | Path,
    env: str | VectorEnv | None = None,
    device: str = "auto",
    tensorboard_log: str | Path | None = None,
    env_overrides: dict[str, Any] | None = None,
) -> RecurrentPPO:
    """`RecurrentPPO.load`: rebuild the model a checkpoint describes, then its training state.
    The saved episodes continue only on the env they were saved from, unchanged."""
    payload = load_checkpoint(path)
    try:
        saved = json.loads(payload["config"])
        # Checkpoints from before `image_encoder` existed ran every image through the CNN.
        saved.setdefault("image_encoder", "cnn")
        config = PPOConfig.from_dict(saved)
        env_spec = json.loads(payload["env_spec"])
        obs_space = space_from_dict(json.loads(payload["observation_space"]))
        act_space = space_from_dict(json.loads(payload["action_space"]))
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: malformed checkpoint metadata ({e})") from None
    config.device = device
    kwargs = dict(env_spec.get("kwargs") or {})
    kwargs.update(env_overrides or {})
    wrappers = env_spec.get("wrappers") or []
    env_is_recorded = env == "recorded"
    if env_is_recorded:
        if not env_spec.get("id"):
            raise CheckpointError(f"{path} does not record which env it was trained on")
        env = env_spec["id"]
    model = cls(
        env,
        config,
        env_kwargs=kwargs,
        wrappers=wrappers,
        tensorboard_log=tensorboard_log,
        observation_space=obs_space,
        action_space=act_space,
    )
    if model.observation_space != obs_space or model.action_space != act_space:
        raise EnvError(
            f"the env's spaces ({model.observation_space}, {model.action_space}) differ from "
            f"the checkpoint's ({obs_space}, {act_space})"
        )
    if env is None or isinstance(env, str):
        env_id = env if isinstance(env, str) else env_spec.get("id")
        model.env_spec = {"id": env_id, "kwargs": kwargs, "wrappers": wrappers}
    try:
        load_training_state(model, payload, restore_rollout=env_is_recorded and not env_overrides)
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        model.close()
        raise CheckpointError(f"{path}: the training state does not fit ({first})") from None
    model.checkpoint_extra = json.loads(payload.get("extra", "{}"))
    return model
