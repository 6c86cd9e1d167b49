"""Recurrent PPO: an LSTM/GRU actor-critic trained with PPO on whole sequences."""

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
