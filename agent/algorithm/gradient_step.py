"""One minibatch's PPO losses and their gradients: in one pass, or as the actor's and the
critic's halves on two threads.

With separate actor and critic networks (`shared_lstm` off) the loss is a sum of terms that
share no parameter but the encoder's: the actor's (clipped surrogate, entropy bonus) and the
critic's (value loss). Their forward and backward passes can then run side by side. On a CPU
the networks are small and each half is a chain of small kernels, so a second core shortens a
gradient step more than a second intra-op thread does (RESULTS.md section 3 has the numbers):
`TwoThreadUpdate` runs the critic's half on a worker thread while the caller runs the actor's,
each with half the torch threads. PyTorch's autograd supports backward passes from several
threads at once; the two write their gradients to disjoint parameters. A shared encoder with
parameters runs once, before the halves, and gets the sum of both halves' gradients after.

The single pass (`gradient`) is the reference the halves must equal (tests/test_two_threads.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from torch import nn

from agent.algorithm.buffer import TrainingBatch
from agent.algorithm.losses import PolicyLoss, policy_loss, value_loss
from agent.config import PPOConfig
from agent.networks.distributions import ActionDistribution
from agent.networks.policy import RecurrentActorCritic


class StepLosses(NamedTuple):
    """What a gradient step logs: the losses (detached where the caller needs no graph)."""

    pg: PolicyLoss
    vf: torch.Tensor
    entropy: torch.Tensor
    loss: torch.Tensor


def actor_loss(
    dist: ActionDistribution, batch: TrainingBatch, clip_range: float, ent_coef: float
) -> tuple[PolicyLoss, torch.Tensor, torch.Tensor]:
    """The clipped surrogate, the mean entropy and the actor's part of the loss."""
    pg = policy_loss(dist.log_prob(batch.actions), batch.log_probs, batch.advantages, clip_range)
    if ent_coef != 0.0:
        entropy = dist.entropy().mean()
        return pg, entropy, pg.loss - ent_coef * entropy
    with torch.no_grad():  # logged only: no need to differentiate it
        entropy = dist.entropy().mean()
    return pg, entropy, pg.loss


def losses(
    policy: RecurrentActorCritic, batch: TrainingBatch, config: PPOConfig, clip_range: float
) -> StepLosses:
    """The minibatch's losses in one forward pass, not yet differentiated."""
    dist, values = policy.evaluate(batch.observations, batch.state, batch.rows, batch.masks)
    pg, entropy, loss = actor_loss(dist, batch, clip_range, config.ent_coef)
    vf = value_loss(values, batch.values, batch.returns, config.clip_range_vf)
    return StepLosses(pg, vf, entropy, loss + config.vf_coef * vf)


class TwoThreadUpdate:
    """Gradient steps whose actor and critic halves run on two threads (see the module's
    docstring), during `learn`: `during_learn` turns them on where they apply (`usable`).

    Each half gets half of torch's threads for the whole of `learn` (its rollouts too, whose
    kernels are as small): switching the count at every update cost more than the halves
    saved (RESULTS.md section 3). The worker thread lives for one `learn`, so that it starts
    with that `learn`'s thread count and a model between two `learn`s holds no thread.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self.steps = 0
        """Gradient steps taken in halves, over the model's life."""

    @property
    def active(self) -> bool:
        """Whether `RecurrentPPO.train` runs its gradient steps in halves."""
        return self._pool is not None

    @staticmethod
    def usable(policy: RecurrentActorCritic, config: PPOConfig, device: torch.device) -> bool:
        """On a CPU with two or more torch threads, on the fast path, for separate actor and
        critic networks, without `target_kl` (whose check comes between forward and backward)
        and without a CNN: a CNN's convolutions gain from intra-op threads, which the halves
        would take from them (84x84 frames of MiniGrid: 0.88x)."""
        return (
            config.fast_path
            and device.type == "cpu"
            and torch.get_num_threads() >= 2
            and policy.core.groups == 2
            and config.target_kl is None
            and not any(isinstance(m, nn.Conv2d) for m in policy.encoder.modules())
        )

    @contextmanager
    def during_learn(
        self, policy: RecurrentActorCritic, config: PPOConfig, device: torch.device
    ) -> Iterator[None]:
        """Turn the halves on for the block where `usable`, with half the torch threads each;
        the thread count is restored after. Inside an active block (a `learn` called by a
        callback), nothing changes."""
        if self.active or not self.usable(policy, config, device):
            yield
            return
        threads = torch.get_num_threads()
        torch.set_num_threads(threads // 2)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="critic-update")
        try:
            yield
        finally:
            self._pool.shutdown()
            self._pool = None
            torch.set_num_threads(threads)

    def gradient(
        self,
        policy: RecurrentActorCritic,
        batch: TrainingBatch,
        config: PPOConfig,
        clip_range: float,
    ) -> StepLosses:
        """The minibatch's losses, detached, with their gradients added to the parameters'."""
        assert self._pool is not None, "only during `during_learn`"
        features = policy.encoder(batch.observations)
        shared = features.requires_grad  # an encoder with parameters: both halves feed it
        inputs = [features.detach().requires_grad_() if shared else features for _ in range(2)]

        def critic() -> torch.Tensor:
            values = policy.critic_values(inputs[1], batch.state, batch.rows)
            vf = value_loss(values, batch.values, batch.returns, config.clip_range_vf)
            (config.vf_coef * vf).backward()
            return vf.detach()

        future = self._pool.submit(critic)
        try:
            dist = policy.actor_distribution(inputs[0], batch.state, batch.rows, batch.masks)
            pg, entropy, loss = actor_loss(dist, batch, clip_range, config.ent_coef)
            loss.backward()
        finally:  # the critic's half is over before anything else happens, even on Ctrl-C
            settle(future)
        vf = future.result()  # its exception, if the actor's half raised none
        if shared:
            features.backward(inputs[0].grad + inputs[1].grad)
        self.steps += 1
        pg = PolicyLoss(pg.loss.detach(), pg.approx_kl, pg.clip_fraction)
        return StepLosses(pg, vf, entropy.detach(), loss.detach() + config.vf_coef * vf)


def settle(future: Future[Any]) -> None:
    """Wait until `future` is done, whatever interrupts the wait (a Ctrl-C, say), and raise
    the first interruption after: a half still writing gradients must never be left behind."""
    interrupted: BaseException | None = None
    while not future.done():
        try:
            wait([future])
        except BaseException as error:  # re-raised below
            interrupted = interrupted or error
    if interrupted is not None:
        raise interrupted
