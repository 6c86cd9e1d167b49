"""The parameters an optimiser updates, with the gradient clip and reset that go with them.

The networks here are small (tens of thousands of weights in about twenty tensors), so on a CPU
the per-tensor work dominates an optimiser step: the gradient-norm clip and Adam loop over the
tensors. With `flat=True` every parameter becomes a view into one flat tensor, and every gradient
a view into another, so the clip is two operations and Adam updates a single tensor (measured
on a 2-core CPU for a 64-unit LSTM actor-critic, clip and `torch.optim.Adam(fused=True).step()`:
250 us over 16 tensors, 100 us over one). Everything here is public PyTorch: the parameters are
built as views of the flat tensor, not re-pointed with `p.data =`, and the optimiser is the
ordinary fused Adam (calling its kernel directly saved about 5% of a CartPoleNoVel run, too little
for a private call).

On CUDA the parameters stay where they are (`flat=False`): cuDNN wants an LSTM's weights in a
chunk of its own layout, and its fused Adam already updates all tensors in one kernel.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


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
