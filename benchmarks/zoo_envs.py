"""rl-baselines3-zoo's velocity-masked envs (`CartPoleNoVel-v1`, ...), registered with Gymnasium.

`import benchmarks.zoo_envs` registers every `NoVel` id that rl_zoo3's `import_envs.py` does, under
the same names, so that the zoo's `hyperparams/ppo_lstm.yml` entries find their env:

    python train.py --config tests/data/ppo_lstm.yml --env benchmarks.zoo_envs:CartPoleNoVel-v1
    gymnasium.make("benchmarks.zoo_envs:CartPoleNoVel-v1")  # what sb3-contrib's side makes

Each is Gymnasium's env with the velocity entries of its observation multiplied by 0, as the
zoo's `MaskVelocityWrapper` does: the observation keeps its shape and its space, the velocities
read 0 at every step. Our own `Memory/CartPoleNoVel-v0` (envs/cartpole_novel.py) removes them
instead (a 2-entry observation); benchmarks/zoo.py uses these, the zoo's, on both sides.

The zoo's LunarLander ids end in `-v2`, old gym's version, which Gymnasium 1.x no longer makes:
here `LunarLanderNoVel-v2` and `LunarLanderContinuousNoVel-v2` mask Gymnasium's current
`LunarLander-v3` (same observation layout; v3 resets the wind with each episode, destroys the
world fully on reset, and widens the observation bounds). They need Box2D (`pip install box2d`,
the `zoo` extra); without it they are registered but `make` fails naming the missing package.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register, registry

VELOCITY_INDICES: dict[str, tuple[int, ...]] = {
    "CartPole-v1": (1, 3),  # cart velocity, pole angular velocity
    "MountainCar-v0": (1,),  # car velocity
    "MountainCarContinuous-v0": (1,),
    "Pendulum-v1": (2,),  # angular velocity
    "LunarLander-v3": (2, 3, 5),  # x and y velocity, angular velocity
}
"""The observation entries each Gymnasium env reports velocities in: rl_zoo3's
`MaskVelocityWrapper.velocity_indices` (LunarLander's are those of its v2)."""

ZOO_IDS: dict[str, tuple[str, dict[str, Any]]] = {
    "CartPoleNoVel-v1": ("CartPole-v1", {}),
    "MountainCarNoVel-v0": ("MountainCar-v0", {}),
    "MountainCarContinuousNoVel-v0": ("MountainCarContinuous-v0", {}),
    "PendulumNoVel-v1": ("Pendulum-v1", {}),
    "LunarLanderNoVel-v2": ("LunarLander-v3", {}),
    "LunarLanderContinuousNoVel-v2": ("LunarLander-v3", {"continuous": True}),
}
"""The zoo's id -> (the Gymnasium env it masks, that env's kwargs)."""


class MaskVelocity(gym.ObservationWrapper):
    """Multiplies the velocity entries of a Box observation by 0 (rl_zoo3's `MaskVelocityWrapper`).

    The observation space is left as it is: the masked entries stay inside it (0 is within every
    velocity's bounds), and a policy built for the full env takes the masked one.

    Args:
        env: the env to mask, with a 1-D Box observation.
        indices: the entries to zero (`VELOCITY_INDICES` of the env's id).
    """

    def __init__(self, env: gym.Env, indices: tuple[int, ...]) -> None:
        super().__init__(env)
        self.mask = np.ones(env.observation_space.shape, dtype=env.observation_space.dtype)
        self.mask[list(indices)] = 0

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation * self.mask


def make_no_velocity(env_id: str, **kwargs: Any) -> gym.Env:
    """`gym.make(env_id, **kwargs)` (with its time limit) with its velocities masked: the entry
    point of every id in `ZOO_IDS`."""
    return MaskVelocity(gym.make(env_id, **kwargs), VELOCITY_INDICES[env_id])


for _zoo_id, (_env_id, _kwargs) in ZOO_IDS.items():
    if _zoo_id not in registry:
        # No max_episode_steps: the inner env's own time limit ends the episodes, as in the zoo.
        register(_zoo_id, f"{__name__}:make_no_velocity", kwargs={"env_id": _env_id, **_kwargs})
