"""The recurrent actor-critic: encoder -> recurrent core(s) -> MLP heads -> action distribution
and value."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from agent.config import PPOConfig
from agent.networks.distributions import ActionDistribution, ActionHead
from agent.networks.encoders import make_encoder
from agent.networks.observations import Obs
from agent.networks.recurrent import RecurrentCore


class PolicyStep(NamedTuple):
    """What the policy does in one rollout step, for a batch of B environments."""

    actions: torch.Tensor
    log_prob: torch.Tensor
    values: torch.Tensor
    state: torch.Tensor


ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def mlp(input_size: int, hidden: list[int], activation: str = "tanh") -> tuple[nn.Module, int]:
    """An MLP (`tanh` or `relu`); returns the module and its output size."""
    layers: list[nn.Module] = []
    for size in hidden:
        layers += [nn.Linear(input_size, size), ACTIVATIONS[activation]()]
        input_size = size
    return nn.Sequential(*layers), input_size


def at_rows(out: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The steps `rows` [n] of sequence outputs [L, N, H], in the flattened [L * N] grid: [n, H]."""
    return out.reshape(-1, out.shape[-1]).index_select(0, rows)


class RecurrentActorCritic(nn.Module):
    """Actor-critic with LSTM/GRU memory over any supported observation and action space.

    The recurrent state is one tensor [S, layers, B, G * H] (see `agent.networks.recurrent`): with
    `shared_lstm` actor and critic read the same G = 1 core; otherwise the actor owns the first
    H units and the critic the last H, two independent networks run in one call.
    """

    def __init__(
        self, observation_space: spaces.Space, action_space: spaces.Space, config: PPOConfig
    ) -> None:
        super().__init__()
        self.encoder = make_encoder(observation_space, config.image_encoder)
        self.hidden_size = config.lstm_hidden_size
        self.core = RecurrentCore(
            self.encoder.output_size,
            config.lstm_hidden_size,
            config.n_lstm_layers,
            config.rnn_type,
            groups=1 if config.shared_lstm else 2,
            forget_bias_init=config.forget_bias_init,
            chrono_max_len=config.chrono_max_len or config.sequence_len,
        )
        self.pi_mlp, pi_size = mlp(self.hidden_size, config.net_arch, config.activation_fn)
        self.vf_mlp, vf_size = mlp(self.hidden_size, config.net_arch, config.activation_fn)
        self.activation = ACTIVATIONS[
            config.activation_fn
        ]()  # agent.networks.fast_path's fused heads
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

    def initial_state(
        self, batch_size: int, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Zero state [S, layers, batch_size, G * H]."""
        return self.core.initial_state(batch_size, device)

    def forward(
        self, obs: Obs, state: torch.Tensor
    ) -> tuple[ActionDistribution, torch.Tensor, torch.Tensor]:
        """Run sequences of observations [L, N, ...] from `state`, with no reset inside.

        Returns the action distribution over [L, N], the values [L, N] and the final state.
        """
        out, state = self.core(self.encoder(obs), state)
        dist = self.action_head(self.pi_mlp(out[..., : self.hidden_size]))
        values = self.value_head(self.vf_mlp(out[..., -self.hidden_size :])).squeeze(-1)
        return dist, values, state

    def evaluate(
        self,
        obs: Obs,
        state: torch.Tensor,
        rows: torch.Tensor,
        masks: torch.Tensor | None = None,
    ) -> tuple[ActionDistribution, torch.Tensor]:
        """Replay padded sequences for training.

        Args:
            obs: observations of N sequences side by side, [L, N, ...], each padded at its end.
            state: [S, layers, N, G * H] state before each sequence's first step.
            rows: [n] positions in the flattened [L * N] grid of the steps to return.
            masks: [n, sum(nvec)] the action masks the rollout acted under at `rows`, or None.

        Returns the action distribution and the values at `rows`, flat [n]. Padding follows a
        sequence's real steps, so it never affects them; the heads only see the chosen rows.
        """
        outs = [at_rows(out, rows) for out in self.core.outputs(self.encoder(obs), state)]
        dist = self.action_head(self.pi_mlp(outs[0]), masks)  # the actor's (or shared) core
        values = self.value_head(self.vf_mlp(outs[-1])).squeeze(-1)  # the critic's
        return dist, values

    def actor_distribution(
        self,
        features: torch.Tensor,
        state: torch.Tensor,
        rows: torch.Tensor,
        masks: torch.Tensor | None = None,
    ) -> ActionDistribution:
        """`evaluate`'s action distribution from encoded observations `features` [L, N, F],
        through the actor's own core and head only (separate cores: `shared_lstm` off)."""
        out = at_rows(self.core.output(features, state, 0), rows)
        return self.action_head(self.pi_mlp(out), masks)

    def critic_values(
        self, features: torch.Tensor, state: torch.Tensor, rows: torch.Tensor
    ) -> torch.Tensor:
        """`evaluate`'s values from encoded observations, through the critic's own core and
        head only."""
        out = at_rows(self.core.output(features, state, 1), rows)
        return self.value_head(self.vf_mlp(out)).squeeze(-1)

    @torch.no_grad()
    def step(
        self,
        obs: Obs,
        state: torch.Tensor,
        deterministic: bool = False,
        mask: torch.Tensor | None = None,
    ) -> PolicyStep:
        """Act for one step of a batch [B, ...] from `state` (already reset where episodes start):
        sample (or, deterministic, take the mode of) the actions among those `mask` [B, sum(nvec)]
        allows (None: all) and advance the state.

        The reference step; a rollout on the fast path runs `agent.networks.fast_path.FusedPolicy.step`,
        which must equal it.
        """
        out, state = self.core.step(self.encoder(obs), state)
        dist = self.action_head(self.pi_mlp(out[:, : self.hidden_size]), mask)
        values = self.value_head(self.vf_mlp(out[:, -self.hidden_size :])).squeeze(-1)
        actions = dist.mode() if deterministic else dist.sample()
        return PolicyStep(actions, dist.log_prob(actions), values, state)

    @torch.no_grad()
    def value(self, obs: Obs, state: torch.Tensor) -> torch.Tensor:
        """Values [B] of one step of a batch [B, ...] from `state`, without advancing anything."""
        out, _ = self.core.step(self.encoder(obs), state)
        return self.value_head(self.vf_mlp(out[:, -self.hidden_size :])).squeeze(-1)
