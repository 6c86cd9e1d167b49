"""Memory tasks for recurrent agents, registered with Gymnasium under the `Memory/` namespace.

`import envs` registers them; then `gym.make("Memory/TMaze-v0", length=100)`. The pure-numpy
tasks also have a native vector env: `gym.make_vec(id, num_envs=64,
vectorization_mode="vector_entry_point")` steps all copies in one numpy call.
"""

from gymnasium.envs.registration import register, registry

_TASKS = {
    "TMaze": "tmaze:TMaze",
    "RepeatFirst": "repeat:RepeatFirst",
    "RepeatPrevious": "repeat:RepeatPrevious",
    "VisualMatch": "visual_match:VisualMatch",
    "Bandit": "bandit:Bandit",
    "CardMatch": "cards:CardMatch",
}

for _name, _target in _TASKS.items():
    if f"Memory/{_name}-v0" not in registry:
        register(
            id=f"Memory/{_name}-v0",
            entry_point=f"envs.{_target}Env",
            vector_entry_point=f"envs.{_target}VectorEnv",
        )

if "Memory/CartPoleNoVel-v0" not in registry:
    register(
        id="Memory/CartPoleNoVel-v0",
        entry_point="envs.cartpole_novel:CartPoleNoVelEnv",
        vector_entry_point="envs.cartpole_novel:CartPoleNoVelVectorEnv",
        max_episode_steps=500,
        reward_threshold=475.0,
    )

if "Memory/PendulumNoVel-v0" not in registry:
    register(
        id="Memory/PendulumNoVel-v0",
        entry_point="envs.pendulum_novel:PendulumNoVelEnv",
        max_episode_steps=200,
    )
