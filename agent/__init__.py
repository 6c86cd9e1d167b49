"""Recurrent PPO: an LSTM/GRU actor-critic trained with PPO on whole sequences.

The package in reading order, each folder importing only the ones above it:

- `config.py`: `PPOConfig`, every hyperparameter with its meaning.
- `networks/`: observation encoders, recurrent cores, action distributions, the actor-critic
  (`policy.py`) and its fused inference path (`fast_path.py`).
- `environment/`: vector envs from Gymnasium ids, wrappers named in a config, env state as data.
- `algorithm/`: `gae.py`, `losses.py`, `sequences.py` and `buffer.py` (the rollout and its
  minibatches), `gradient_step.py` (a minibatch's losses and gradients, in one pass or in two
  halves on two threads), then `ppo.py`: `RecurrentPPO`, collect -> advantages -> update -> log.
- `report/`: statistics, learning curves from TensorBoard logs, memory figures.
- `run/`: what `train.py` and `evaluate.py` do: flags and presets, callbacks, evaluation.
- `tune/`: what `tune.py` does: seeds and sweeps as Ray Tune experiments.
"""

from agent.algorithm.checkpoint import CheckpointError
from agent.algorithm.ppo import NumericalError, RecurrentPPO
from agent.config import ConfigError, PPOConfig
from agent.environment.vec_env import EnvError, make_vec_env
from agent.networks.encoders import UnsupportedSpaceError
from agent.networks.policy import RecurrentActorCritic

__all__ = [
    "CheckpointError",
    "ConfigError",
    "EnvError",
    "NumericalError",
    "PPOConfig",
    "RecurrentActorCritic",
    "RecurrentPPO",
    "UnsupportedSpaceError",
    "make_vec_env",
]
