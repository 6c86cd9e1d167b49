"""The fast path: every speed trick for small networks, each beside the reference it must equal.

`PPOConfig.fast_path` (default True) turns these on; `fast_path=False` is the plain reference
path, which is what `agent.networks.recurrent` and `agent.networks.policy` compute: `nn.LSTM`/`nn.GRU` modules at
every step, the heads as their modules, per-tensor `torch.optim.Adam` and `clip_grad_norm_`.
The networks here are small (tens of thousands of weights in about twenty tensors), so on a CPU
the cost is per tensor and per kernel call, not per weight. The tricks:

1. `Parameters`: one flat tensor for all parameters and another for all gradients, on a CPU.
   Why: the gradient-norm clip and Adam loop over the tensors. With every parameter a view into
   one flat tensor, and every gradient a view into another, the clip is two operations and Adam
   updates a single tensor (measured on a 2-core CPU for a 64-unit LSTM actor-critic, clip and
   `torch.optim.Adam(fused=True).step()`: 250 us over 16 tensors, 100 us over one). Everything is
   public PyTorch: the parameters are built as views of the flat tensor, not re-pointed with
   `p.data =`, and the optimiser is the ordinary fused Adam (`RecurrentPPO` asks for
   `fused=True` on the fast path; calling its kernel directly saved about 5% of a CartPoleNoVel
   run, too little for a private call). On CUDA the parameters stay where they are
   (`flat=False`): cuDNN wants an LSTM's weights in a chunk of its own layout, and its fused
   Adam already updates all tensors in one kernel.
   Reference: the module's own parameters, `torch.optim.Adam` over them and
   `torch.nn.utils.clip_grad_norm_` (what `Parameters(module, flat=False)` gives).
   Checked by tests/test_flat_params.py (the same training as per-tensor parameters; optimiser
   states that move between the layouts) and tests/test_fast_path.py.

2. `core_step_weights` and `lstm_step`: one rollout step of an LSTM core over fused weights.
   Why: all G networks of a layer (the actor's and the critic's) run as one matrix product over
   a block-diagonal weight, with the gates reordered so that one sigmoid covers three gates: at
   a rollout's batch sizes the cost is per kernel call, and this makes a dozen calls per step
   where G `torch.lstm_cell`s made fifty. A minGRU's step (`mingru_step`) and an FFM's
   (`ffm_step`: its complex decay in real arithmetic) are fused the same way. GRU, peephole and
   `none` cores have no fused step (`torch.gru_cell`, undocumented, was no faster end to end):
   they take the reference step.
   Reference: `RecurrentCore.step`, the modules on a sequence of one step.
   Checked by tests/test_recurrent.py (single fused steps match the sequence kernel; the weights
   are a copy, made again after an update), tests/test_policy_step.py and tests/test_fast_path.py.

3. `step_weights` and `fused_heads`: the actor's and critic's heads side by side, one matrix per
   layer (block-diagonal where they do not share an input), so that a step runs both heads in
   one product per layer instead of two.
   Reference: `RecurrentActorCritic.step` and `.value` (`pi_mlp`, `action_head`, `vf_mlp`,
   `value_head`).
   Checked by tests/test_policy_step.py (actions, log-probabilities, values and states of the
   fused step against the modules, for every action space, shared or not, with and without
   hidden layers, LSTM and GRU) and tests/test_fast_path.py. An action mask goes into the same
   `ActionHead.distribution` as on the reference path (tests/test_masks.py).

4. `FusedPolicy`: the rollout's `step` and `value` over weights fused once per rollout (the
   parameters stay fixed during one), instead of once per step.
   Reference: the policy's own `step` and `value`, which `RecurrentPPO.collect_rollout` calls
   when `fast_path` is off.
   Checked by tests/test_fast_path.py: both paths, side by side from the same seed, give the
   same actions, values, states and parameters after two rollouts and updates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from agent.networks.distributions import ActionDistribution
from agent.networks.observations import Obs
from agent.networks.policy import PolicyStep, RecurrentActorCritic
from agent.networks.recurrent import RecurrentCore

# ------------------------------------------------------------------ 1. flat parameters ---


class Parameters:
    """`module`'s parameters for an optimiser: `tensors` (one flat tensor when `flat`).

    With `flat`, the module's parameters are replaced (under the same names, in the same order)
    by new ones that are views of the flat tensor, and each one's `.grad` by a view of the flat
    tensor's `.grad`: autograd adds gradients into an existing `.grad` in place, so they
    accumulate there until `zero_grad`. Make `Parameters` before anything keeps references to
    the module's parameters (an optimiser over them, say): those would be the old ones.
    """

    def __init__(self, module: nn.Module, flat: bool) -> None:
        self.params = list(module.parameters())
        if not self.params:
            raise ValueError("the module has no parameters")
        self.sizes = [p.numel() for p in self.params]
        self.flat: nn.Parameter | None = None
        if flat:
            self.flat = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in self.params]))
            self.flat.grad = torch.zeros_like(self.flat)
            views = self._views(self.flat.detach())
            new = {
                id(p): nn.Parameter(v, requires_grad=p.requires_grad)
                for p, v in zip(self.params, views, strict=True)
            }
            for owner in module.modules():  # a shared parameter is replaced everywhere
                for name, p in list(owner.named_parameters(recurse=False, remove_duplicate=False)):
                    setattr(owner, name, new[id(p)])
            self.params = [new[id(p)] for p in self.params]
            self.attach()

    @property
    def tensors(self) -> list[torch.Tensor]:
        """What the optimiser updates."""
        return [self.flat] if self.flat is not None else self.params

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        return [v.view_as(p) for v, p in zip(flat.split(self.sizes), self.params, strict=True)]

    def attach(self) -> None:
        """Make every gradient a view of the flat one again (when flat): after something
        replaced a gradient (`zero_grad(set_to_none=True)`), its values are copied back into
        the flat one. Cheap when nothing moved.

        Raises RuntimeError when a parameter's data no longer lies in the flat tensor (a `.to()`
        to another device or dtype after `Parameters` was made).
        """
        if self.flat is None:
            return
        data, grads = self._views(self.flat.detach()), self._views(self.flat.grad)
        for p, d, g in zip(self.params, data, grads, strict=True):
            if p.data_ptr() != d.data_ptr():
                raise RuntimeError(
                    "a parameter no longer lies in the flat tensor (was the module moved to "
                    "another device or dtype?): make Parameters again after moving it"
                )
            if p.grad is None or p.grad.data_ptr() != g.data_ptr():
                if p.grad is None:
                    g.zero_()
                else:
                    g.copy_(p.grad)
                p.grad = g

    def zero_grad(self) -> None:
        if self.flat is not None:
            self.flat.grad.zero_()
        else:
            for p in self.params:
                p.grad = None

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """Scale the gradients to a global L2 norm of at most `max_norm`; return the norm before,
        as `torch.nn.utils.clip_grad_norm_` does."""
        if self.flat is None:
            return torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        grad = self.flat.grad
        norm = torch.linalg.vector_norm(grad)
        grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))
        return norm

    def optimizer_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """An optimiser state dict for `tensors`, from one saved for either layout: the module's
        parameters one by one (in `module.parameters()` order) or one flat tensor. Adam's
        moments are concatenated or split in that order."""
        groups = state["param_groups"]
        ids = [i for group in groups for i in group["params"]]
        if len(ids) == len(self.tensors):
            return state
        if len(ids) not in (1, len(self.params)):
            raise ValueError(
                f"the optimizer state has {len(ids)} parameters, the model {len(self.params)}"
            )
        saved = [state["state"].get(i, {}) for i in ids]
        steps = [s["step"] for s in saved if "step" in s]
        moments: dict[str, list[torch.Tensor]] = {}
        for key in ("exp_avg", "exp_avg_sq"):
            if len(ids) == 1:  # flat -> per parameter
                flat = saved[0].get(key, torch.zeros(sum(self.sizes)))
                moments[key] = [m.clone() for m in self._views(flat)]
            else:  # per parameter -> flat
                parts = [
                    s[key].reshape(-1) if key in s else torch.zeros(n)
                    for s, n in zip(saved, self.sizes, strict=True)
                ]
                moments[key] = [torch.cat(parts)]
        per_tensor = {}
        if steps:
            for i in range(len(self.tensors)):
                step = steps[0].clone() if isinstance(steps[0], torch.Tensor) else steps[0]
                per_tensor[i] = {"step": step, **{k: v[i] for k, v in moments.items()}}
        group = {k: v for k, v in groups[0].items() if k != "params"}
        return {
            "state": per_tensor,
            "param_groups": [{**group, "params": list(range(len(self.tensors)))}],
        }


# -------------------------------------------------------------- 2. the fused LSTM step ---


class FFMStepWeights(NamedTuple):
    """One FFM layer's weights for `ffm_step`, the G networks side by side."""

    pre: torch.Tensor
    """[F, G * (2m + 2H)]: the input projections, columns grouped (u, through, input gate,
    output gate) and, within a group, by network (block-diagonal for deeper layers)."""
    pre_bias: torch.Tensor
    decay: tuple[torch.Tensor, torch.Tensor]
    """gamma's real and imaginary parts, [G * H] each, in the state's layout."""
    mix: torch.Tensor
    """[2 * G * H, G * H]: the mixing layers over the memory's real parts, then imaginary ones."""
    mix_bias: torch.Tensor
    eps: float
    """The LayerNorm's epsilon."""


CoreStepWeights = list[tuple[torch.Tensor, torch.Tensor]] | list[FFMStepWeights]
"""Per layer, the fused (weight, bias) of `lstm_step` or `mingru_step`, or `ffm_step`'s."""

_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


@torch.no_grad()
def core_step_weights(core: RecurrentCore) -> CoreStepWeights | None:
    """The weights `lstm_step` uses, from `core`'s current parameters (a minGRU's: those of
    `mingru_step`, an FFM's those of `ffm_step`; None for the other cores):
    per layer, the G networks' weights as one matrix [F + G * H, 4 * G * H] that maps
    [input, h] to all gates (block-diagonal where the networks do not talk), and one bias.

    Gate columns are grouped (input, forget, output, cell) and, within a gate, by network,
    so that one sigmoid covers three gates of all networks and the new cell state comes out
    in the state's layout. They are a copy: make them again after the parameters change.
    """
    if core.rnn_type == "mingru":
        return mingru_step_weights(core)
    if core.rnn_type == "ffm":
        return ffm_step_weights(core)
    if core.rnn_type != "lstm":
        return None
    G, H = core.groups, core.hidden_size
    first = core.rnns[0].weight_ih_l0
    order = torch.tensor([0, 1, 3, 2], device=first.device)  # (i, f, g, o) -> (i, f, o, g)

    def gates_last(w: torch.Tensor) -> torch.Tensor:
        """[4H, n] in PyTorch's gate order -> [n, 4, H] in the fused one."""
        return w.view(4, H, -1).index_select(0, order).permute(2, 0, 1)

    fused = []
    for layer in range(core.num_layers):
        w_ih, w_hh, b_ih, b_hh = (
            [getattr(rnn, f"{n}_l{layer}") for rnn in core.rnns] for n in _WEIGHT_NAMES
        )
        n_in = w_ih[0].shape[1] * (1 if layer == 0 else G)
        weight = first.new_zeros(n_in + G * H, 4, G, H)
        for g in range(G):
            # Layer 0 reads the shared input; deeper layers read their own network's h.
            rows = slice(0, n_in) if layer == 0 else slice(g * H, (g + 1) * H)
            weight[rows, :, g] = gates_last(w_ih[g])
            weight[n_in + g * H : n_in + (g + 1) * H, :, g] = gates_last(w_hh[g])
        bias = torch.stack([gates_last(b_ih[g] + b_hh[g])[0] for g in range(G)], dim=1)
        fused.append((weight.view(n_in + G * H, 4 * G * H), bias.reshape(-1)))
    return fused


@torch.no_grad()
def lstm_step(
    core: RecurrentCore, x: torch.Tensor, state: torch.Tensor, weights: CoreStepWeights
) -> tuple[torch.Tensor, torch.Tensor]:
    """`core.step(x, state)` for an LSTM core, over `weights = core_step_weights(core)`: [B, F]
    inputs from `state` [2, layers, B, G * H]; returns the outputs [B, G * H] and the next
    state."""
    GH = core.output_size
    hs, cs = [], []
    for layer, (weight, bias) in enumerate(weights):
        gates = torch.addmm(bias, torch.cat((x, state[0, layer]), dim=1), weight)
        ifo = gates[:, : 3 * GH].sigmoid()
        c = torch.addcmul(
            ifo[:, GH : 2 * GH] * state[1, layer], ifo[:, :GH], gates[:, 3 * GH :].tanh()
        )
        x = ifo[:, 2 * GH :] * c.tanh()
        hs.append(x)
        cs.append(c)
    return x, torch.stack((torch.stack(hs), torch.stack(cs)))


@torch.no_grad()
def mingru_step_weights(core: RecurrentCore) -> CoreStepWeights:
    """The weights `mingru_step` uses: per layer, the G networks' input weights as one matrix
    [F, 2 * G * H] (deeper layers: [G * H, 2 * G * H], block-diagonal) whose columns are the
    keep gates of all networks, then their candidates, in the state's layout; and one bias.
    A minGRU's gates see the input only, so there is no [input, h] concatenation."""
    G, H = core.groups, core.hidden_size
    fused = []
    for layer in range(core.num_layers):
        weights = [getattr(rnn, f"weight_ih_l{layer}") for rnn in core.rnns]
        biases = [getattr(rnn, f"bias_ih_l{layer}") for rnn in core.rnns]
        n_in = weights[0].shape[1] * (1 if layer == 0 else G)
        weight = weights[0].new_zeros(n_in, 2, G, H)
        for g in range(G):
            rows = slice(0, n_in) if layer == 0 else slice(g * H, (g + 1) * H)
            weight[rows, :, g] = weights[g].view(2, H, -1).permute(2, 0, 1)
        bias = torch.stack([b.view(2, H) for b in biases], dim=1)
        fused.append((weight.view(n_in, 2 * G * H), bias.reshape(-1)))
    return fused


@torch.no_grad()
def mingru_step(
    core: RecurrentCore, x: torch.Tensor, state: torch.Tensor, weights: CoreStepWeights
) -> tuple[torch.Tensor, torch.Tensor]:
    """`core.step(x, state)` for a minGRU core, over `weights = mingru_step_weights(core)`: h =
    keep * h + (1 - keep) * candidate, as one product and a `lerp` per layer."""
    GH = core.output_size
    hs = []
    for layer, (weight, bias) in enumerate(weights):
        gates = torch.addmm(bias, x, weight)
        x = torch.lerp(gates[:, GH:], state[0, layer], gates[:, :GH].sigmoid())
        hs.append(x)
    return x, torch.stack(hs).unsqueeze(0)


@torch.no_grad()
def ffm_step_weights(core: RecurrentCore) -> list[FFMStepWeights]:
    """The weights `ffm_step` uses (see `FFMStepWeights`), from `core`'s current parameters."""
    G, H = core.groups, core.hidden_size
    fused = []
    for layer in range(core.num_layers):
        layers = [rnn.layers[layer] for rnn in core.rnns]
        m = layers[0].memory
        sizes = (m, H, m, H)
        n_in = layers[0].pre.in_features * (1 if layer == 0 else G)
        pre = layers[0].pre.weight.new_zeros(n_in, 2 * G * (m + H))
        pre_bias = pre.new_zeros(2 * G * (m + H))
        mix = pre.new_zeros(2, G * H, G * H)
        for part, size in enumerate(sizes):  # u, through, input gate, output gate
            begin = sum(sizes[:part])  # in each network's rows; G * begin in the fused columns
            for g, ffm in enumerate(layers):
                rows = slice(0, n_in) if layer == 0 else slice(g * H, (g + 1) * H)
                cols = slice(G * begin + g * size, G * begin + (g + 1) * size)
                pre[rows, cols] = ffm.pre.weight[begin : begin + size].t()
                pre_bias[cols] = ffm.pre.bias[begin : begin + size]
        for g, ffm in enumerate(layers):
            block = slice(g * H, (g + 1) * H)
            # the mixing layer reads each entry's real and imaginary parts side by side
            mix[0, block, block] = ffm.mix.weight[:, 0::2].t()
            mix[1, block, block] = ffm.mix.weight[:, 1::2].t()
        gamma = torch.cat([ffm.log_gamma().exp().reshape(-1) for ffm in layers])
        fused.append(
            FFMStepWeights(
                pre, pre_bias, (gamma.real.contiguous(), gamma.imag.contiguous()),
                mix.view(2 * G * H, G * H), torch.cat([ffm.mix.bias for ffm in layers]),
                layers[0].norm.eps,
            )
        )  # fmt: skip
    return fused


@torch.no_grad()
def ffm_step(
    core: RecurrentCore, x: torch.Tensor, state: torch.Tensor, weights: list[FFMStepWeights]
) -> tuple[torch.Tensor, torch.Tensor]:
    """`core.step(x, state)` for an FFM core, over `weights = ffm_step_weights(core)`: per layer
    one product for every network's projections, the complex decay in real arithmetic, one
    product for the mixing layers, and a LayerNorm per network (`agent.networks.ffm`)."""
    G, H = core.groups, core.hidden_size
    reals, imags = [], []
    for layer, w in enumerate(weights):
        m = core.rnns[0].layers[layer].memory
        u, through, g_in, g_out = torch.addmm(w.pre_bias, x, w.pre).split(
            (G * m, G * H, G * m, G * H), dim=1
        )
        entering = (u * g_in.sigmoid()).repeat_interleave(H // m, dim=1)  # per entry
        (decay_re, decay_im), real, imag = w.decay, state[0, layer], state[1, layer]
        real, imag = decay_re * real - decay_im * imag + entering, decay_re * imag + decay_im * real
        mixed = torch.addmm(w.mix_bias, torch.cat((real, imag), dim=1), w.mix)
        normed = nn.functional.layer_norm(mixed.view(-1, G, H), (H,), eps=w.eps).view(-1, G * H)
        x = torch.lerp(through, normed, g_out.sigmoid())
        reals.append(real)
        imags.append(imag)
    return x, torch.stack((torch.stack(reals), torch.stack(imags)))


def core_step(
    core: RecurrentCore, x: torch.Tensor, state: torch.Tensor, weights: CoreStepWeights | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fused step where `core` has one (`weights` not None: an LSTM, a minGRU or an FFM),
    else the reference."""
    if weights is None:
        return core.step(x, state)
    if core.rnn_type == "mingru":
        return mingru_step(core, x, state, weights)
    if core.rnn_type == "ffm":
        return ffm_step(core, x, state, weights)
    return lstm_step(core, x, state, weights)


# ------------------------------------------------------------------ 3. the fused heads ---

HeadWeights = list[tuple[torch.Tensor, torch.Tensor]]
"""Per layer, (weight, bias) of the actor's and critic's heads side by side."""


class StepWeights(NamedTuple):
    """`step_weights(policy)`: the recurrent core's (None unless an LSTM, a minGRU or an FFM)
    and the heads'."""

    core: CoreStepWeights | None
    heads: HeadWeights


@torch.no_grad()
def step_weights(policy: RecurrentActorCritic) -> StepWeights:
    """The weights of `FusedPolicy` for many steps of unchanged parameters (a rollout): the
    core's fused weights (see `core_step_weights`) and the actor's and critic's heads side by
    side, one matrix per layer (block-diagonal where they do not share an input), so that a
    step runs both heads in one product per layer. A copy: make them again after the
    parameters change."""
    pi = [m for m in policy.pi_mlp if isinstance(m, nn.Linear)] + [policy.action_head.linear]
    vf = [m for m in policy.vf_mlp if isinstance(m, nn.Linear)] + [policy.value_head]
    heads = []
    for k, (a, c) in enumerate(zip(pi, vf, strict=True)):
        shared_input = k == 0 and policy.core.groups == 1
        weight = (
            torch.cat((a.weight.t(), c.weight.t()), dim=1)
            if shared_input
            else torch.block_diag(a.weight.t(), c.weight.t())
        )
        heads.append((weight, torch.cat((a.bias, c.bias))))
    return StepWeights(core_step_weights(policy.core), heads)


def fused_heads(
    policy: RecurrentActorCritic,
    out: torch.Tensor,
    heads: HeadWeights,
    mask: torch.Tensor | None = None,
) -> tuple[ActionDistribution, torch.Tensor]:
    """The action distribution (under the action `mask`, if any) and the values [B] of the
    core's outputs `out` [B, G * H], as `policy`'s heads compute them, over `heads`
    (`step_weights(policy).heads`)."""
    z = out
    for weight, bias in heads[:-1]:
        z = policy.activation(torch.addmm(bias, z, weight))
    weight, bias = heads[-1]
    z = torch.addmm(bias, z, weight)
    return policy.action_head.distribution(z[:, :-1], mask), z[:, -1]


# ---------------------------------------------------------------- 4. the rollout's step ---


class FusedPolicy:
    """`policy.step` and `policy.value` over weights fused once (`step_weights`), for many steps
    of unchanged parameters (a rollout): make it again after the parameters change."""

    def __init__(self, policy: RecurrentActorCritic) -> None:
        self.policy = policy
        self.weights = step_weights(policy)

    @torch.no_grad()
    def step(
        self,
        obs: Obs,
        state: torch.Tensor,
        deterministic: bool = False,
        mask: torch.Tensor | None = None,
    ) -> PolicyStep:
        """`RecurrentActorCritic.step`: fused core (where it has a fused step) and fused heads."""
        policy = self.policy
        out, state = core_step(policy.core, policy.encoder(obs), state, self.weights.core)
        dist, values = fused_heads(policy, out, self.weights.heads, mask)
        actions = dist.mode() if deterministic else dist.sample()
        return PolicyStep(actions, dist.log_prob(actions), values, state)

    @torch.no_grad()
    def value(self, obs: Obs, state: torch.Tensor) -> torch.Tensor:
        """`RecurrentActorCritic.value`: fused core (where it has a fused step), then the critic's
        modules (the actor's head is not needed)."""
        policy = self.policy
        out, _ = core_step(policy.core, policy.encoder(obs), state, self.weights.core)
        return policy.value_head(policy.vf_mlp(out[:, -policy.hidden_size :])).squeeze(-1)
