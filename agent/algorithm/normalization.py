"""Running observation and reward normalisation (as SB3's VecNormalize), state kept as tensors."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.running_mean_std import RunningMeanStd


class ObsNormalizer:
    """Normalises Box observations by a running mean and variance, clipped to +-clip."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, epsilon: float = 1e-8) -> None:
        self.rms = RunningMeanStd(shape=shape)
        self.clip, self.epsilon = clip, epsilon

    def __call__(self, obs: np.ndarray, update: bool | np.ndarray) -> np.ndarray:
        """Normalise a batch; `update`: True, False, or a [B] mask of the rows that update the
        running statistics first."""
        if isinstance(update, np.ndarray):
            if update.any():
                self.rms.update(np.asarray(obs, dtype=np.float64)[update])
        elif update:
            self.rms.update(np.asarray(obs, dtype=np.float64))
        normed = (obs - self.rms.mean) / np.sqrt(self.rms.var + self.epsilon)
        return np.clip(normed, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return _rms_state(self.rms)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        _load_rms(self.rms, state)


class RewardNormalizer:
    """Divides rewards by the running std of the discounted return (reset at episode ends)."""

    def __init__(self, n_envs: int, gamma: float, clip: float = 10.0, epsilon: float = 1e-8):
        self.rms = RunningMeanStd(shape=())
        self.returns = np.zeros(n_envs)
        self.gamma, self.clip, self.epsilon = gamma, clip, epsilon

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        self.rms.update(self.returns)
        self.returns[dones] = 0.0
        scaled = rewards / np.sqrt(self.rms.var + self.epsilon)
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {**_rms_state(self.rms), "returns": torch.as_tensor(self.returns)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        _load_rms(self.rms, state)
        self.returns = state["returns"].numpy().copy()


def _rms_state(rms: RunningMeanStd) -> dict[str, torch.Tensor]:
    return {
        "mean": torch.as_tensor(np.asarray(rms.mean, dtype=np.float64)),
        "var": torch.as_tensor(np.asarray(rms.var, dtype=np.float64)),
        "count": torch.tensor(float(rms.count), dtype=torch.float64),
    }


def _load_rms(rms: RunningMeanStd, state: dict[str, torch.Tensor]) -> None:
    rms.mean = state["mean"].numpy().copy()
    rms.var = state["var"].numpy().copy()
    rms.count = float(state["count"])
