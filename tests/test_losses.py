"""The PPO losses against values computed by hand."""

import math

import pytest
import torch

from agent.algorithm.losses import explained_variance, policy_loss, value_loss


def test_clipped_surrogate_by_hand():
    # ratio 1.5 with A = 2 is clipped to 1.2 * 2; ratio 0.5 with A = -1 is clipped to 0.8 * -1
    log_prob = torch.tensor([math.log(1.5), math.log(0.5)])
    out = policy_loss(log_prob, torch.zeros(2), torch.tensor([2.0, -1.0]), clip_range=0.2)
    assert out.loss.item() == pytest.approx((-2.4 + 0.8) / 2)
    assert out.clip_fraction.item() == 1.0
    kl = ((0.5 - math.log(1.5)) + (-0.5 - math.log(0.5))) / 2
    assert out.approx_kl.item() == pytest.approx(kl, rel=1e-5)


def test_the_unclipped_term_counts_where_it_is_the_lower_bound():
    # ratio 1.5 with A = -2: -3 (unclipped) < -2.4 (clipped); ratio 0.5 with A = 1: 0.5 < 0.8
    log_prob = torch.tensor([math.log(1.5), math.log(0.5)])
    out = policy_loss(log_prob, torch.zeros(2), torch.tensor([-2.0, 1.0]), clip_range=0.2)
    assert out.loss.item() == pytest.approx(-(-3.0 + 0.5) / 2)
    assert out.clip_fraction.item() == 1.0


def test_unclipped_inside_the_trust_region():
    log_prob = torch.tensor([math.log(1.1)])
    out = policy_loss(log_prob, torch.zeros(1), torch.tensor([3.0]), clip_range=0.2)
    assert out.loss.item() == pytest.approx(-3.3)
    assert out.clip_fraction.item() == 0.0


def test_value_loss_with_and_without_clipping():
    values, old, returns = torch.tensor([3.0]), torch.tensor([1.0]), torch.tensor([2.5])
    assert value_loss(values, old, returns, None).item() == pytest.approx(0.25)
    # clipped to 1 + 0.5 = 1.5, so the error is 1.0
    assert value_loss(values, old, returns, 0.5).item() == pytest.approx(1.0)


def test_explained_variance():
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(target, target) == pytest.approx(1.0)
    assert explained_variance(torch.full((4,), 2.5), target) == pytest.approx(0.0)
    assert math.isnan(explained_variance(target, torch.ones(4)))
