"""The one typed configuration of a training run, with Stable-Baselines3's hyperparameter names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

RNN_TYPES = ("lstm", "peephole", "gru", "none")
SCHEDULES = ("constant", "linear", "adaptive")
ACTIVATIONS = ("tanh", "relu")
VEC_ENVS = ("auto", "native", "sync", "async")
IMAGE_ENCODERS = ("auto", "cnn", "flatten")
GATE_INITS = ("chrono", "half-chrono", "chrono-forget", "default")
"""The named `forget_bias_init` values; a number is the other kind."""


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the problem."""


@dataclass
class PPOConfig:
    """Hyperparameters of recurrent PPO. Every field is a `train.py` flag (`--n-steps 32`)."""

    # --- rollout -------------------------------------------------------------------------------
    n_envs: int = 16
    """Number of environment copies stepped in parallel."""
    n_steps: int = 128
    """Steps collected per environment copy per rollout (rollout size = n_envs * n_steps)."""
    vec_env: str = "auto"
    """How the copies are stepped: `native` (the env's own batched `vector_entry_point`), `sync`
    (one after another in this process), `async` (Gymnasium's AsyncVectorEnv: one process per
    copy, for envs slow to step; no exact resume), or `auto`: native when the env has one and no
    wrappers are given, else async when a timed step of one copy is slower than the round trip
    to a worker process and there is more than one CPU, else sync."""

    # --- optimisation ----------------------------------------------------------------------------
    batch_size: int = 256
    """Environment steps per minibatch (whole sequences are packed until this many steps)."""
    n_epochs: int = 10
    """Passes over each rollout. With `batch_size` 256 that is 80 Adam steps per 2,048 samples
    (sb3-contrib's defaults take 80 per 1,024): on tasks nobody tuned for, 4 epochs of 512 (16
    steps) left RepeatPrevious at return 0.49 and CartPoleNoVel at 250 after 250k and 150k
    steps, where these reach 0.94 and 417, at 2.4x the wall time per step (RESULTS.md 6)."""
    learning_rate: float = 1e-3
    """Adam step size (at the start when annealed; the largest when adaptive)."""
    lr_schedule: str = "constant"
    """`constant`, `linear` (anneal to 0 at `total_timesteps`) or `adaptive` (after each update,
    divide the rate by 1.5 when the update's mean approximate KL, `train/approx_kl`, was above
    2 * `desired_kl`, multiply it by 1.5 when below half; within [0.01, 1] x `learning_rate`).
    Measured before the entropy bonus became the default: on VisualMatch the updates reached a
    KL of 0.2-0.5 and runs lost the task after solving it. Over 3 seeds `adaptive` was ahead
    there (0.93 against 0.81, the CNN) and on RepeatPrevious (0.991 against 0.975), behind on
    CartPoleNoVel (250 against 316) and blind FrozenLake (0.33 against 0.67), each gap one seed:
    not the default (RESULTS.md 6)."""
    desired_kl: float = 0.02
    """The approximate KL per update an `adaptive` schedule steers towards."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE bias/variance trade-off."""
    clip_range: float = 0.2
    """PPO policy clipping parameter."""
    clip_range_vf: float | None = None
    """Value clipping around the rollout's values; None disables it (SB3's default)."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient (sb3-contrib's default is 0, CleanRL's 0.01). At 0, runs on
    tasks nobody tuned for solved a task and lost it again: VisualMatch ended at 0.80, 1.0 and
    0.88 over 3 seeds, and a CartPoleNoVel run collapsed to a deterministic policy scoring 23 (its
    entropy fell from 0.44 to 0.11 nats in one update, then to 0.003). With 0.01 (RESULTS.md 6,
    3 seeds, equal steps): VisualMatch 1.0 on every seed (sb3-contrib: 1.0 on 3), RepeatPrevious
    0.987 (0.975), CartPoleNoVel 140 / 425 / 277 (500 / 23 / 426), repeat-first 0.947 (0.987;
    one seed at 0.84), the gap-50 T-maze solved on every seed at 70k steps (55k). The presets
    name 0 where they were measured with it."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float | None = None
    """Stop the epochs of an update early once the approximate KL exceeds 1.5 * target_kl."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    adam_eps: float = 1e-5
    """Adam epsilon."""

    # --- networks ------------------------------------------------------------------------------
    image_encoder: str = "auto"
    """How uint8 grids (images) enter the network, each channel divided by its observed range:
    `cnn` (three 3x3 convolutions and a linear layer), `flatten` (the scaled values straight
    into the recurrent core, as sb3-contrib's MlpLstmPolicy), or `auto`: `flatten` for grids of
    at most 16x16 cells, `cnn` above. On VisualMatch's 8x8 frames with the defaults of then (no
    entropy bonus; 150k steps, RESULTS.md 6) flattening reached the goal at 14-27k steps and
    ended at 0.95 on average over six runs; the CNN took 59-90k and ended at 0.81 over three
    (flattened with today's defaults: 1.0 on 3 seeds). At the visual-match preset's
    settings the CNN did better (5 of 5 seeds against 4 of 5). Larger grids are not measured."""
    rnn_type: str = "lstm"
    """Recurrent core: `lstm`, `peephole` (an LSTM whose gates see the cell, Gers & Schmidhuber
    2000), `gru`, or `none` (a memoryless baseline)."""
    lstm_hidden_size: int = 128
    """Units of the recurrent core."""
    n_lstm_layers: int = 1
    """Stacked recurrent layers."""
    shared_lstm: bool = False
    """One recurrent core for actor and critic (True) or one each (False, sb3-contrib's default)."""
    bptt_len: int = 0
    """Truncation length of backpropagation through time; 0 means the whole rollout (n_steps).
    Shorter sequences mean more of them per minibatch: 16 brought the `cartpole-novel` and
    `repeat-previous` presets to their goals in 0.5-0.6x and 0.7x the time, but as a default 32 lost
    a T-maze seed with a gap of 50, longer than the cut (RESULTS.md 5 and 6). It also sets the
    chrono initialisation's longest time scale when `chrono_max_len` is 0."""
    net_arch: list[int] = field(default_factory=lambda: [64])
    """Hidden sizes of the MLP heads after the recurrent core."""
    activation_fn: str = "tanh"
    """Activation of the MLP heads: `tanh` (SB3's default) or `relu`."""
    forget_bias_init: str = "half-chrono"
    """LSTM gate bias init: `chrono` (Tallec & Ollivier 2018: forget bias log U(1, T), input bias
    its negative), `half-chrono` (chrono on half the units, PyTorch's init on the other half),
    `chrono-forget` (chrono's forget bias, the input gate left at PyTorch's init, about half
    open), `default` (PyTorch's, as sb3-contrib), or a number added to the forget-gate bias.
    Chrono prepares units for gaps of up to T steps by shutting their input gates, which slows
    tasks that must keep writing; PyTorch's init writes freely but loses long gaps. On tasks
    nobody tuned for (seed 0, equal steps, RESULTS.md 6) `half-chrono` kept the best of both:
    RepeatPrevious 0.99 (chrono 0.94, PyTorch 0.99), CartPoleNoVel 500 (417, 500), a T-maze gap
    of 50 solved at 55k steps (chrono 59k; PyTorch's init stayed at chance)."""
    chrono_max_len: int = 0
    """Longest dependency chrono init prepares for; 0 means the BPTT length."""
    log_std_init: float = 0.0
    """Initial log standard deviation of Gaussian (Box) actions."""
    ortho_init: bool = True
    """Orthogonal initialisation of linear layers (SB3's default)."""

    # --- normalisation ---------------------------------------------------------------------------
    normalize_obs: bool = False
    """Running mean/std normalisation of vector observations (like SB3's VecNormalize)."""
    normalize_reward: bool = False
    """Scale rewards by a running std of the discounted return."""

    # --- run -------------------------------------------------------------------------------------
    seed: int = 0
    """Seed of torch, numpy and the environments."""
    device: str = "auto"
    """`auto` (CUDA when present), `cpu` or `cuda`."""
    fast_path: bool = True
    """The speed-ups for small networks: one flat tensor for all parameters on a CPU (the
    gradient clip and a fused Adam step on one tensor), and rollout steps with both cores and
    both heads fused into one product per layer. False runs the plain reference path
    (`nn.LSTM` modules at every step, per-tensor `torch.optim.Adam` and `clip_grad_norm_`);
    both compute the same, within float rounding."""

    @property
    def rollout_size(self) -> int:
        """Environment steps per rollout."""
        return self.n_envs * self.n_steps

    @property
    def sequence_len(self) -> int:
        """Longest training sequence: the BPTT truncation length, at most the rollout length."""
        return self.n_steps if self.bptt_len <= 0 else min(self.bptt_len, self.n_steps)

    def validate(self) -> PPOConfig:
        """Raise `ConfigError` naming the first invalid field; return self when all are valid."""
        positive = ("n_envs", "n_steps", "batch_size", "n_epochs", "lstm_hidden_size")
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.vec_env not in VEC_ENVS:
            raise ConfigError(f"vec_env must be one of {', '.join(VEC_ENVS)}, got {self.vec_env!r}")
        if self.n_lstm_layers < 1:
            raise ConfigError(f"n_lstm_layers must be >= 1, got {self.n_lstm_layers}")
        if self.batch_size > self.rollout_size:
            raise ConfigError(
                f"batch_size ({self.batch_size}) is larger than a rollout "
                f"(n_envs * n_steps = {self.rollout_size})"
            )
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.lr_schedule not in SCHEDULES:
            raise ConfigError(
                f"lr_schedule must be one of {', '.join(SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if not self.desired_kl > 0:
            raise ConfigError(f"desired_kl must be > 0, got {self.desired_kl}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.clip_range > 0:
            raise ConfigError(f"clip_range must be > 0, got {self.clip_range}")
        if self.clip_range_vf is not None and not self.clip_range_vf > 0:
            raise ConfigError(f"clip_range_vf must be > 0 or None, got {self.clip_range_vf}")
        if self.target_kl is not None and not self.target_kl > 0:
            raise ConfigError(f"target_kl must be > 0 or None, got {self.target_kl}")
        if self.max_grad_norm <= 0:
            raise ConfigError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ConfigError(
                f"image_encoder must be one of {', '.join(IMAGE_ENCODERS)}, "
                f"got {self.image_encoder!r}"
            )
        if self.rnn_type not in RNN_TYPES:
            raise ConfigError(
                f"rnn_type must be one of {', '.join(RNN_TYPES)}, got {self.rnn_type!r}"
            )
        if self.bptt_len < 0:
            raise ConfigError(f"bptt_len must be >= 0 (0 = whole rollout), got {self.bptt_len}")
        if any(not isinstance(h, int) or h <= 0 for h in self.net_arch):
            raise ConfigError(f"net_arch must be a list of positive integers, got {self.net_arch}")
        if self.activation_fn not in ACTIVATIONS:
            raise ConfigError(
                f"activation_fn must be one of {', '.join(ACTIVATIONS)}, got {self.activation_fn!r}"
            )
        if self.forget_bias_init not in GATE_INITS:
            try:
                float(self.forget_bias_init)
            except ValueError:
                raise ConfigError(
                    f"forget_bias_init must be one of {', '.join(GATE_INITS)} or a number, "
                    f"got {self.forget_bias_init!r}"
                ) from None
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of the fields (YAML/JSON serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PPOConfig:
        """Build from a dict; unknown keys raise `ConfigError` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown hyperparameter(s): {', '.join(unknown)}")
        return cls(**values)
