"""One flat tensor for all parameters: the same training as per-tensor parameters, and optimizer
states that move between the two layouts."""

import copy

import pytest
import torch
from torch import nn

from agent.flat_params import Parameters


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


def test_direct_adam_step_equals_the_optimizer_step():
    (a, pa, oa), (b, pb, ob) = pair()
    oa = torch.optim.Adam(pa.tensors, lr=1e-2, eps=1e-7, fused=True)
    ob = torch.optim.Adam(pb.tensors, lr=1e-2, eps=1e-7, fused=True)
    public_steps = []
    public_step = ob.step
    ob.step = lambda: public_steps.append(1) or public_step()
    for k in range(4):
        x = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(k))
        for net, params, opt in ((a, pa, oa), (b, pb, ob)):
            params.zero_grad()
            loss_of(net, x).backward()
            params.clip_grad_norm_(0.1)
            params.adam_step(opt)
    assert len(public_steps) == 1  # only the first, which makes the state; then the kernel
    assert float(ob.state[pb.flat]["step"]) == 4.0
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)
