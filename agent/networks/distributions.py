"""Action heads: a linear layer from the actor's latent to a distribution over the action space.

Each distribution returns per-sample `log_prob` and `entropy` summed over action dimensions, so
they have the batch shape of the latent.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Bernoulli, Normal

from agent.networks.encoders import UnsupportedSpaceError


class ActionDistribution:
    """The common interface of the action distributions."""

    def sample(self) -> torch.Tensor:
        raise NotImplementedError

    def mode(self) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError


MASKED_LOGIT = -1e8
"""The logit of an illegal action (MaskablePPO's value): finite, so gradients stay finite, and
low enough that its probability is exactly 0 in float32."""


class CategoricalDist(ActionDistribution):
    """One categorical per independent action dimension (Discrete: one; MultiDiscrete: several).

    Written on log-softmax directly rather than `torch.distributions.Categorical`: the rollout
    calls it at every step, and the generic class's bookkeeping costs more than the math.

    `mask` [..., sum(nvec)] (True: legal) sets the logits of illegal actions to `MASKED_LOGIT`,
    so they are never sampled and the entropy is over the legal actions only; None: no mask,
    and nothing is computed for one.
    """

    def __init__(
        self,
        logits: torch.Tensor,
        nvec: list[int],
        scalar: bool,
        mask: torch.Tensor | None = None,
    ) -> None:
        self.mask = None
        if mask is not None:
            mask = mask.to(dtype=torch.bool, device=logits.device)
            logits = torch.where(mask, logits, MASKED_LOGIT)
            self.mask = mask.split(nvec, dim=-1)
        self.log_p = [part.log_softmax(dim=-1) for part in logits.split(nvec, dim=-1)]
        self.scalar = scalar

    def _pack(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return parts[0] if self.scalar else torch.stack(parts, dim=-1)

    def sample(self) -> torch.Tensor:
        parts = []
        for log_p in self.log_p:
            flat = log_p.exp().reshape(-1, log_p.shape[-1])
            parts.append(torch.multinomial(flat, 1).reshape(log_p.shape[:-1]))
        return self._pack(parts)

    def mode(self) -> torch.Tensor:
        return self._pack([log_p.argmax(dim=-1) for log_p in self.log_p])

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        actions = actions.long()
        if self.scalar:
            return self.log_p[0].gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        parts = [log_p.gather(-1, actions[..., i : i + 1]) for i, log_p in enumerate(self.log_p)]
        return torch.cat(parts, dim=-1).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        terms = [log_p.exp() * log_p for log_p in self.log_p]
        if self.mask is not None:  # 0 * log 0 = 0: an illegal action adds nothing
            terms = [torch.where(m, t, 0.0) for m, t in zip(self.mask, terms, strict=True)]
        parts = [t.sum(dim=-1) for t in terms]
        return -(parts[0] if len(parts) == 1 else torch.stack(parts, dim=-1).sum(dim=-1))


class GaussianDist(ActionDistribution):
    """Diagonal Gaussian with a state-independent log standard deviation."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.dist = Normal(mean, log_std.exp().expand_as(mean), validate_args=False)

    def sample(self) -> torch.Tensor:
        return self.dist.sample()

    def mode(self) -> torch.Tensor:
        return self.dist.mean

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(actions).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        return self.dist.entropy().sum(dim=-1)


class BernoulliDist(ActionDistribution):
    """Independent Bernoulli variables (MultiBinary)."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.dist = Bernoulli(logits=logits, validate_args=False)

    def sample(self) -> torch.Tensor:
        return self.dist.sample()

    def mode(self) -> torch.Tensor:
        return (self.dist.logits > 0).float()

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.dist.log_prob(actions.float()).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        return self.dist.entropy().sum(dim=-1)


class ActionHead(nn.Module):
    """Maps a latent [..., D] to the action distribution of `space`."""

    def __init__(self, space: spaces.Space, latent_size: int, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.space = space
        if isinstance(space, spaces.Discrete):
            self.nvec = [int(space.n)]
        elif isinstance(space, spaces.MultiDiscrete):
            if space.nvec.ndim != 1:
                raise UnsupportedSpaceError("MultiDiscrete actions must be one-dimensional")
            self.nvec = [int(n) for n in space.nvec]
        elif isinstance(space, spaces.Box):
            if len(space.shape) != 1:
                raise UnsupportedSpaceError(
                    f"Box actions must be one-dimensional, got {space.shape}"
                )
            if not np.issubdtype(space.dtype, np.floating):
                raise UnsupportedSpaceError("Box actions must have a floating-point dtype")
            self.log_std = nn.Parameter(torch.full((space.shape[0],), float(log_std_init)))
            self.nvec = [int(space.shape[0])]
        elif isinstance(space, spaces.MultiBinary):
            if len(np.atleast_1d(space.shape)) != 1:
                raise UnsupportedSpaceError("MultiBinary actions must be one-dimensional")
            self.nvec = [int(np.prod(space.shape))]
        else:
            raise UnsupportedSpaceError(f"unsupported action space: {space}")
        self.linear = nn.Linear(latent_size, sum(self.nvec))

    def forward(self, latent: torch.Tensor, mask: torch.Tensor | None = None) -> ActionDistribution:
        return self.distribution(self.linear(latent), mask)

    def distribution(
        self, out: torch.Tensor, mask: torch.Tensor | None = None
    ) -> ActionDistribution:
        """The distribution whose parameters are `out`, the output of `linear`, with the illegal
        actions of `mask` [..., sum(nvec)] (bool, True: legal) ruled out (Discrete and
        MultiDiscrete only; None: all legal)."""
        if isinstance(self.space, spaces.Discrete):
            return CategoricalDist(out, self.nvec, scalar=True, mask=mask)
        if isinstance(self.space, spaces.MultiDiscrete):
            return CategoricalDist(out, self.nvec, scalar=False, mask=mask)
        if mask is not None:
            raise UnsupportedSpaceError(
                f"action masks need Discrete or MultiDiscrete actions, not {self.space}"
            )
        if isinstance(self.space, spaces.Box):
            return GaussianDist(out, self.log_std)
        return BernoulliDist(out)

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Actions as the env takes them: Box actions clipped to the bounds, offsets restored.

        The log-probability is always of the unclipped sample; only the env sees the clip.
        """
        if isinstance(self.space, spaces.Box):
            return np.clip(actions, self.space.low, self.space.high).astype(self.space.dtype)
        if isinstance(self.space, spaces.Discrete):
            return actions + int(self.space.start)
        if isinstance(self.space, spaces.MultiDiscrete):
            return actions + self.space.start
        return actions.astype(self.space.dtype)
