"""The recurrent actor-critic: encoder -> recurrent core(s) -> MLP heads -> action distribution
and value."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agent.config import PPOConfig
from agent.distributions import ActionDistribution, ActionHead
from agent.encoders import make_encoder
from agent.observations import Obs, tree_map
from agent.recurrent import RecurrentCore, reset_state


class PolicyStep(NamedTuple):
    """What the policy does in one rollout step, for a batch of B environments."""

    actions: torch.Tensor
    log_prob: torch.Tensor
    values: torch.Tensor
    state: RNNStates


class RNNStates(NamedTuple):
    """Recurrent state of the actor and the critic, each [S, layers, B, H].

    With a shared core the critic's entry is an empty tensor: the actor's state serves both.
    """

    pi: torch.Tensor
    vf: torch.Tensor

    def reset(self, episode_start: torch.Tensor) -> RNNStates:
        """Zero the entries of the batch where `episode_start` [B] is True."""
        return RNNStates(reset_state(self.pi, episode_start), reset_state(self.vf, episode_start))


def mlp(input_size: int, hidden: list[int]) -> tuple[nn.Module, int]:
    """Tanh MLP; returns the module and its output size."""
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(input_size, size), nn.Tanh()]
        input_size = size
    return nn.Sequential(*layers), input_size


class RecurrentActorCritic(nn.Module):
    """Actor-critic with LSTM/GRU memory over any supported observation and action space."""

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Space, config: PPOConfig
    ) -> None:
        super().__init__()
        self.encoder = make_encoder(observation_space)
        features = self.encoder.output_size
        chrono_len = config.chrono_max_len or config.sequence_len

        def core() -> RecurrentCore:
            return RecurrentCore(
                features,
                config.lstm_hidden_size,
                config.n_lstm_layers,
                config.rnn_type,
                config.forget_bias_init,
                chrono_len,
            )

        self.pi_core = core()
        self.vf_core = None if config.shared_lstm else core()
        self.pi_mlp, pi_size = mlp(self.pi_core.output_size, config.net_arch)
        self.vf_mlp, vf_size = mlp(self.pi_core.output_size, config.net_arch)
        self.action_head = ActionHead(action_space, pi_size, config.log_std_init)
        self.value_head = nn.Linear(vf_size, 1)
        if config.ortho_init:
            self._orthogonal_init()

    def _orthogonal_init(self) -> None:
        """SB3's gains: sqrt(2) for hidden layers, 0.01 for the policy output, 1 for the value."""
        for module, gain in (
            (self.encoder, np.sqrt(2)),
            (self.pi_mlp, np.sqrt(2)),
            (self.vf_mlp, np.sqrt(2)),
            (self.action_head.linear, 0.01),
            (self.value_head, 1.0),
        ):
            for layer in module.modules():
                if isinstance(layer, nn.Linear | nn.Conv2d):
                    nn.init.orthogonal_(layer.weight, gain=gain)
                    nn.init.zeros_(layer.bias)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> RNNStates:
        """Zero state for a batch of `batch_size` environments."""
        vf = (self.vf_core or self.pi_core).initial_state(batch_size, device)
        if self.vf_core is None:
            vf = vf[:0]
        return RNNStates(self.pi_core.initial_state(batch_size, device), vf)

    def forward(
        self, obs: Obs, state: RNNStates
    ) -> tuple[ActionDistribution, torch.Tensor, RNNStates]:
        """Run sequences of observations [L, N, ...] from `state`, with no reset inside.

        Returns the action distribution over [L, N], the values [L, N] and the final state.
        """
        features = self.encoder(obs)
        pi_out, pi_state = self.pi_core(features, state.pi)
        if self.vf_core is None:
            vf_out, vf_state = pi_out, state.vf
        else:
            vf_out, vf_state = self.vf_core(features, state.vf)
        dist = self.action_head(self.pi_mlp(pi_out))
        values = self.value_head(self.vf_mlp(vf_out)).squeeze(-1)
        return dist, values, RNNStates(pi_state, vf_state)

    @torch.no_grad()
    def step(self, obs: Obs, state: RNNStates, deterministic: bool = False) -> PolicyStep:
        """Act for one step of a batch [B, ...] from `state` (already reset where episodes start):
        sample (or, deterministic, take the mode of) the actions and advance the state."""
        dist, values, state = self(tree_map(lambda x: x.unsqueeze(0), obs), state)
        actions = dist.mode() if deterministic else dist.sample()
        return PolicyStep(actions[0], dist.log_prob(actions)[0], values[0], state)

    @torch.no_grad()
    def act(
        self, obs: Obs, pi_state: torch.Tensor, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor alone, one step of a batch [B, ...]: returns (actions [B, ...], new state)."""
        features = self.encoder(tree_map(lambda x: x.unsqueeze(0), obs))
        out, pi_state = self.pi_core(features, pi_state)
        dist = self.action_head(self.pi_mlp(out))
        actions = dist.mode() if deterministic else dist.sample()
        return actions[0], pi_state

    @torch.no_grad()
    def value(self, obs: Obs, state: RNNStates) -> torch.Tensor:
        """Values [B] of one step of a batch [B, ...] from `state`, without advancing anything."""
        return self(tree_map(lambda x: x.unsqueeze(0), obs), state)[1][0]
