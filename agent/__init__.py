"""Recurrent PPO: an LSTM/GRU actor-critic trained with PPO on whole sequences."""

from agent.checkpoint import CheckpointError
from agent.config import ConfigError, PPOConfig
from agent.encoders import UnsupportedSpaceError
from agent.policy import RecurrentActorCritic
from agent.ppo import NumericalError, RecurrentPPO
from agent.vec_env import EnvError, make_vec_env

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
