"""The fast path computes what the plain reference path computes (issue 14).

The reference path (`fast_path=False`) is the one a reader learns first, and the one a CUDA user
runs: `nn.LSTM`/`nn.GRU` modules at every rollout step, per-tensor `torch.optim.Adam` and
`clip_grad_norm_`. The fast path fuses the rollout step's weights and, on a CPU, keeps all
parameters in one flat tensor. Both are run here on the CPU, side by side, from the same seed.
"""

import pytest
import torch

from agent import RecurrentPPO


def make_model(fast_path: bool = True, device: str = "cpu", **config) -> RecurrentPPO:
    return RecurrentPPO(
        "Memory/TMaze-v0",
        env_kwargs={"length": 4},
        n_envs=4,
        n_steps=16,
        batch_size=16,
        n_epochs=2,
        lstm_hidden_size=8,
        net_arch=[8, 8],
        device=device,
        seed=1,
        fast_path=fast_path,
        **config,
    )


def rollout_and_update(fast_path: bool, device: str = "cpu", **config):
    model = make_model(fast_path, device, **config)
    torch.manual_seed(7)  # the same action samples for both paths
    model._start_episodes()
    buffers = []
    for _ in range(2):  # the second rollout runs on updated weights (biases no longer zero)
        buffers.append(model.collect_rollout())
        model.compute_advantages(buffers[-1])
        model.train(buffers[-1])
    params = {name: p.detach().clone() for name, p in model.policy.named_parameters()}
    model.close()
    return buffers, params, model


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"rnn_type": "gru"},
        {"rnn_type": "mingru"},
        {"rnn_type": "ffm"},
        {"shared_lstm": True},
        {"n_lstm_layers": 2},
        {"rnn_type": "mingru", "n_lstm_layers": 2},
        {"rnn_type": "ffm", "n_lstm_layers": 2},
    ],
    ids=["lstm", "gru", "mingru", "ffm", "shared", "two-layers", "mingru-2", "ffm-2"],
)
def test_fast_and_reference_paths_agree_on_rollout_and_update(config):
    fast, fast_params, fast_model = rollout_and_update(True, **config)
    plain, plain_params, plain_model = rollout_and_update(False, **config)
    # The paths are what they say: flat parameters and fused step weights, or neither.
    assert fast_model.params.flat is not None and plain_model.params.flat is None
    for a, b in zip(fast, plain, strict=True):
        assert torch.equal(a.actions, b.actions)
        for field in ("log_probs", "values", "states", "last_values"):
            torch.testing.assert_close(getattr(a, field), getattr(b, field), rtol=1e-4, atol=1e-5)
    assert fast_params.keys() == plain_params.keys()
    for name in fast_params:
        torch.testing.assert_close(fast_params[name], plain_params[name], rtol=1e-4, atol=1e-6)
    # ... and the update moved the parameters (the comparison is not of two untouched models).
    untouched = make_model(**config)
    moved = [
        not torch.allclose(p, fast_params[name]) for name, p in untouched.policy.named_parameters()
    ]
    assert sum(moved) >= len(moved) // 2
    untouched.close()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fast_and_reference_paths_agree_on_cuda():
    fast, fast_params, _ = rollout_and_update(True, device="cuda")
    plain, plain_params, _ = rollout_and_update(False, device="cuda")
    for a, b in zip(fast, plain, strict=True):
        torch.testing.assert_close(a.values, b.values, rtol=1e-4, atol=1e-5)
    for name in fast_params:
        torch.testing.assert_close(fast_params[name], plain_params[name], rtol=1e-3, atol=1e-5)
