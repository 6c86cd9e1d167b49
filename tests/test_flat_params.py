"""One flat tensor for all parameters: the same training as per-tensor parameters, and optimizer
states that move between the two layouts."""

import copy

import pytest
import torch
from torch import nn

from agent.networks.fast_path import Parameters


def make_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.LSTM(8, 4), nn.Linear(4, 2))


def loss_of(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    h = net[1](net[0](x))
    out, _ = net[2](h)
    return net[3](out).pow(2).sum()


def train_steps(net: nn.Module, params: Parameters, opt, n: int, max_norm: float = 0.1):
    norms = []
    for k in range(n):
        x = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(k))
        params.zero_grad()
        loss_of(net, x).backward()
        norms.append(params.clip_grad_norm_(max_norm).item())
        opt.step()
    return norms


def pair():
    a, b = make_net(), make_net()
    pa, pb = Parameters(a, flat=False), Parameters(b, flat=True)
    oa = torch.optim.Adam(pa.tensors, lr=1e-2)
    ob = torch.optim.Adam(pb.tensors, lr=1e-2)
    return (a, pa, oa), (b, pb, ob)


def test_flat_parameters_are_views_and_train_like_per_tensor_ones():
    (a, pa, oa), (b, pb, ob) = pair()
    assert len(pb.tensors) == 1 and pb.tensors[0].numel() == sum(p.numel() for p in a.parameters())
    for p in b.parameters():
        assert p.untyped_storage().data_ptr() == pb.flat.untyped_storage().data_ptr()
    norms_a = train_steps(a, pa, oa, 5)
    norms_b = train_steps(b, pb, ob, 5)
    assert norms_a == pytest.approx(norms_b, rel=1e-5)
    assert max(norms_a) > 0.1  # the clip was active
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)
    assert not torch.equal(next(a.parameters()), next(make_net().parameters()))


def test_attach_repairs_gradients_set_to_none():
    (_, _, _), (b, pb, ob) = pair()
    train_steps(b, pb, ob, 1)
    b.zero_grad(set_to_none=True)  # what a user's code might do between updates
    pb.attach()
    pb.zero_grad()
    loss_of(b, torch.randn(5, 2, 3)).backward()
    assert pb.flat.grad.abs().sum() > 0


@pytest.mark.parametrize("direction", ["per-tensor to flat", "flat to per-tensor"])
def test_optimizer_state_moves_between_layouts(direction):
    (a, pa, oa), (b, pb, ob) = pair()
    src, dst = (
        ((a, pa, oa), (b, pb, ob))
        if direction == "per-tensor to flat"
        else ((b, pb, ob), (a, pa, oa))
    )
    train_steps(*src, 3)
    # The destination takes the source's weights and optimizer state, then both go on.
    dst[0].load_state_dict(src[0].state_dict())
    dst[1].attach()
    dst[2].load_state_dict(dst[1].optimizer_state(copy.deepcopy(src[2].state_dict())))
    train_steps(*src, 2)
    train_steps(*dst, 2)
    for p, q in zip(src[0].parameters(), dst[0].parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


def test_optimizer_state_of_another_model_is_refused():
    (a, pa, oa), _ = pair()
    train_steps(a, pa, oa, 1)
    other = Parameters(nn.Linear(2, 2), flat=True)
    with pytest.raises(ValueError, match="parameters"):
        other.optimizer_state(oa.state_dict())


def test_fused_adam_on_the_flat_tensor_trains_like_per_tensor_adam():
    """The training loop's optimizer: `torch.optim.Adam(fused=True)`'s public step over the one
    flat tensor updates the module's parameters in place."""
    (a, pa, _), (b, pb, _) = pair()
    oa = torch.optim.Adam(pa.tensors, lr=1e-2, eps=1e-7, fused=True)
    ob = torch.optim.Adam(pb.tensors, lr=1e-2, eps=1e-7, fused=True)
    train_steps(a, pa, oa, 4)
    train_steps(b, pb, ob, 4)
    assert float(ob.state[pb.flat]["step"]) == 4.0
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)


class Tied(nn.Module):
    """One parameter under three names: twice in one module, once in another."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(2, 2)
        self.second = nn.Linear(2, 2)
        self.second.weight = self.first.weight
        self.first.alias = self.first.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x)) + x @ self.first.alias


def test_a_shared_parameter_stays_shared_and_is_stored_once():
    torch.manual_seed(0)
    net = Tied()
    before = [p.detach().clone() for p in net.parameters()]
    params = Parameters(net, flat=True)
    assert params.flat.numel() == 4 + 2 + 2
    assert net.first.weight is net.second.weight is net.first.alias is params.params[0]
    for p, b in zip(net.parameters(), before, strict=True):
        assert torch.equal(p, b)
    opt = torch.optim.Adam(params.tensors, lr=0.1)
    net(torch.randn(3, 2)).sum().backward()
    opt.step()
    assert not torch.equal(net.first.weight, before[0])
    assert torch.equal(net.first.weight, params.flat[:4].view(2, 2))


def test_attach_refuses_parameters_moved_out_of_the_flat_tensor():
    _, (b, pb, _) = pair()
    b.double()
    with pytest.raises(RuntimeError, match="flat tensor"):
        pb.attach()
