"""The Memory/ suite: Gymnasium's checker, determinism, native vector envs against sync ones,
scripted optimal policies at the documented optimum, memoryless play at chance, bad kwargs."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401
from envs.visual_match import PALETTE

MEMORY_IDS = sorted(k for k in gym.registry if k.startswith("Memory/"))
NATIVE_IDS = [k for k in MEMORY_IDS if gym.spec(k).vector_entry_point]
NEEDS_PYGAME = {"Memory/CartPoleNoVel-v0", "Memory/PendulumNoVel-v0"}


def test_the_suite_is_registered():
    assert set(MEMORY_IDS) >= {
        "Memory/TMaze-v0", "Memory/RepeatFirst-v0", "Memory/RepeatPrevious-v0",
        "Memory/CartPoleNoVel-v0", "Memory/PendulumNoVel-v0", "Memory/VisualMatch-v0",
        "Memory/Bandit-v0", "Memory/CardMatch-v0",
    }  # fmt: skip


@pytest.mark.parametrize("env_id", MEMORY_IDS)
def test_gymnasium_env_checker(env_id):
    check_env(gym.make(env_id).unwrapped, skip_render_check=env_id in NEEDS_PYGAME)


@pytest.mark.parametrize("env_id", MEMORY_IDS)
def test_same_seed_same_episode(env_id):
    def episode(seed):
        env = gym.make(env_id)
        env.action_space.seed(seed)
        obs, _ = env.reset(seed=seed)
        trace = [obs]
        for _ in range(40):
            obs, r, term, trunc, _ = env.step(env.action_space.sample())
            trace += [obs, np.array([r])]
            if term or trunc:
                break
        return np.concatenate([np.ravel(x).astype(np.float64) for x in trace])

    a, b = episode(3), episode(3)
    np.testing.assert_array_equal(a, b)
    others = [episode(seed) for seed in range(4, 10)]
    assert any(o.shape != a.shape or not np.array_equal(o, a) for o in others)


def test_tmaze_length_1000_is_not_cut():
    env = gym.make("Memory/TMaze-v0", length=1000)
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(0)
        steps, done = steps + 1, terminated or truncated
    assert steps == 1001 and terminated and not truncated


# --- scripted policies: (make a fresh policy state, act(state, obs) -> action) ------------------


def tmaze_policy():
    memory = {}

    def act(obs):
        if obs[0] != 0:
            memory["goal"] = 0 if obs[0] > 0 else 1
        return memory["goal"] if obs[1] == 1 else 0

    return act


def repeat_first_policy():
    memory = []

    def act(obs):
        if not memory:
            memory.append(int(np.argmax(obs)))
        return memory[0]

    return act


def repeat_previous_policy(delay):
    def make():
        seen = []

        def act(obs):
            seen.append(int(np.argmax(obs)))
            return seen[-1 - delay] if len(seen) > delay else 0

        return act

    return make


def visual_match_policy():
    memory = []

    def act(obs):
        if not memory:
            colour = obs[0, 0]
            memory.append(int(np.argmin(np.abs(PALETTE.astype(int) - colour).sum(axis=1))))
        return memory[0]

    return act


def card_match_policy():
    order = []

    def act(obs):
        n = round((len(obs) + 0.25) ** 0.5 - 0.5)  # len = n * n + n
        if not order:
            order.extend(np.argmax(obs[: n * n].reshape(n, n), axis=1).tolist())
        return order[int(np.argmax(obs[n * n :]))]

    return act


OPTIMAL = {
    "Memory/CardMatch-v0": ({}, card_match_policy),
    "Memory/TMaze-v0": ({"length": 30}, tmaze_policy),
    "Memory/RepeatFirst-v0": ({}, repeat_first_policy),
    "Memory/RepeatPrevious-v0": ({"delay": 4}, repeat_previous_policy(4)),
    "Memory/VisualMatch-v0": ({"delay": 5}, visual_match_policy),
}


def play(env_id, kwargs, make_policy, episodes, seed=0):
    """Returns and successes of `episodes` episodes on a single env."""
    env = gym.make(env_id, **kwargs)
    returns, successes = [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        act, total, done = make_policy(), 0.0, False
        while not done:
            obs, r, term, trunc, info = env.step(act(obs))
            total, done = total + r, term or trunc
        returns.append(total)
        successes.append(info.get("success", np.nan))
    return np.array(returns), np.array(successes)


@pytest.mark.parametrize("env_id", sorted(OPTIMAL))
def test_scripted_memory_policy_reaches_the_optimum(env_id):
    kwargs, make_policy = OPTIMAL[env_id]
    returns, successes = play(env_id, kwargs, make_policy, 30)
    np.testing.assert_allclose(returns, 1.0, atol=1e-6)
    assert successes.mean() == 1.0


def random_policy(space, seed=0):
    rng = np.random.default_rng(seed)
    return lambda: lambda obs: int(rng.integers(space.n))


@pytest.mark.parametrize(
    "env_id, kwargs, chance",
    [
        ("Memory/TMaze-v0", {"length": 10}, 0.0),
        ("Memory/RepeatFirst-v0", {}, 0.25),
        ("Memory/RepeatPrevious-v0", {}, 0.25),
        ("Memory/VisualMatch-v0", {}, 0.25),
        ("Memory/Bandit-v0", {}, 0.5),
    ],
)
def test_random_play_is_at_chance(env_id, kwargs, chance):
    space = gym.make(env_id, **kwargs).action_space
    returns, _ = play(env_id, kwargs, random_policy(space), 400)
    assert abs(returns.mean() - chance) < 0.1


# --- native vector envs ----------------------------------------------------------------------


def run_vector(env, steps, choose, seed=0):
    """Step a vector env with `choose(obs, prev_done) -> actions`; collect episode returns and
    successes, checking NEXT_STEP autoreset: the step after an end gives reward 0 and no end."""
    obs, _ = env.reset(seed=seed)
    prev_done = np.zeros(env.num_envs, bool)
    returns, running, successes = [], np.zeros(env.num_envs), []
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(choose(obs, prev_done))
        assert np.all(r[prev_done] == 0) and not np.any((term | trunc)[prev_done])
        running += r
        done = term | trunc
        returns += running[done].tolist()
        running[done] = 0.0
        if "_success" in info:
            assert np.array_equal(info["_success"], done)
            successes += info["success"][done].tolist()
        prev_done = done
    return np.array(returns), np.array(successes)


@pytest.mark.parametrize("env_id", NATIVE_IDS)
def test_native_vector_env_matches_sync(env_id):
    kwargs = {"length": 6} if env_id == "Memory/TMaze-v0" else {}
    native = gym.make_vec(env_id, num_envs=16, vectorization_mode="vector_entry_point", **kwargs)
    sync = gym.make_vec(env_id, num_envs=16, vectorization_mode="sync", **kwargs)
    assert native.single_observation_space == sync.single_observation_space
    assert native.single_action_space == sync.single_action_space
    assert native.observation_space == sync.observation_space
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"]
    stats = []
    for env in (native, sync):
        env.action_space.seed(0)
        stats.append(run_vector(env, 400, lambda obs, done, env=env: env.action_space.sample()))
    (r_native, s_native), (r_sync, s_sync) = stats
    assert len(r_native) > 20 and abs(len(r_native) - len(r_sync)) <= 0.1 * len(r_sync)
    scale = max(np.std(r_sync), 1e-3)
    assert abs(r_native.mean() - r_sync.mean()) < 4 * scale / np.sqrt(len(r_sync))
    if len(s_sync):
        assert abs(s_native.mean() - s_sync.mean()) < 0.15


def test_native_tmaze_under_the_optimal_policy_matches_sync():
    def optimal(obs, memory):
        memory[obs[:, 0] != 0] = (obs[obs[:, 0] != 0, 0] < 0).astype(int)
        return np.where(obs[:, 1] == 1, memory, 0)

    results = []
    for mode in ("vector_entry_point", "sync"):
        env = gym.make_vec("Memory/TMaze-v0", num_envs=8, vectorization_mode=mode, length=5)
        memory = np.zeros(8, dtype=int)
        results.append(run_vector(env, 120, lambda obs, done, m=memory: optimal(obs, m)))
    for returns, successes in results:
        assert len(returns) == 8 * (120 // 7) + np.count_nonzero([120 % 7 == 6])
        assert np.all(returns == 1.0) and np.all(successes == 1.0)


def per_copy(make_policy, n):
    """A vector policy from a single-env scripted one: one policy instance per copy, a new one
    for each episode (the step after an end only resets, so its action is ignored)."""
    policies = [None] * n
    fresh = np.ones(n, bool)

    def choose(obs, prev_done):
        actions = np.zeros(n, dtype=np.int64)
        for i in range(n):
            if prev_done[i]:
                fresh[i] = True  # this step resets copy i; its next observation starts anew
                continue
            if fresh[i]:
                policies[i], fresh[i] = make_policy(), False
            actions[i] = policies[i](obs[i])
        return actions

    return choose


@pytest.mark.parametrize("env_id", sorted(OPTIMAL))
def test_native_vector_env_under_the_optimal_policy_matches_sync(env_id):
    kwargs, make_policy = OPTIMAL[env_id]
    results = []
    for mode in ("vector_entry_point", "sync"):
        env = gym.make_vec(env_id, num_envs=6, vectorization_mode=mode, **kwargs)
        results.append(run_vector(env, 200, per_copy(make_policy, 6)))
    (r_native, s_native), (r_sync, s_sync) = results
    assert len(r_native) == len(r_sync) > 6
    np.testing.assert_allclose(r_native, 1.0, atol=1e-6)
    np.testing.assert_allclose(r_sync, 1.0, atol=1e-6)
    assert np.all(s_native == 1.0) and np.all(s_sync == 1.0)


def win_stay_lose_shift():
    def act(obs):
        last = int(np.argmax(obs[:2])) if obs[:2].any() else 0
        paid = obs[2] > 0
        return last if paid else 1 - last

    return act


def test_bandit_memoryless_best_and_oracle_bounds():
    """The docstring's numbers: win-stay-lose-shift (memoryless, it reads only the last step)
    earns about 0.59; pulling the better arm from the start earns 2/3 on average."""
    returns, _ = play("Memory/Bandit-v0", {}, win_stay_lose_shift, 400)
    assert 0.56 < returns.mean() < 0.63
    env = gym.make("Memory/Bandit-v0")
    oracle = []
    for ep in range(400):
        env.reset(seed=ep)
        oracle.append(env.unwrapped.task.probs[0].max())
    assert abs(np.mean(oracle) - 2 / 3) < 0.03


# --- arguments and rendering -----------------------------------------------------------------


@pytest.mark.parametrize(
    "env_id, kwargs, word",
    [
        ("Memory/TMaze-v0", {"length": 0}, "length"),
        ("Memory/TMaze-v0", {"length": "10"}, "length"),
        ("Memory/TMaze-v0", {"noise": "yes"}, "noise"),
        ("Memory/RepeatFirst-v0", {"num_symbols": 1}, "num_symbols"),
        ("Memory/RepeatPrevious-v0", {"delay": 40, "length": 32}, "delay"),
        ("Memory/RepeatPrevious-v0", {"delay": 2.5}, "delay"),
        ("Memory/VisualMatch-v0", {"num_colors": 9}, "num_colors"),
        ("Memory/VisualMatch-v0", {"delay": -1}, "delay"),
        ("Memory/Bandit-v0", {"num_arms": 1}, "num_arms"),
    ],
)
def test_bad_kwargs_raise_a_clear_value_error(env_id, kwargs, word):
    with pytest.raises(ValueError, match=word):
        gym.make(env_id, **kwargs)
    with pytest.raises(ValueError, match=word):
        gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point", **kwargs)


RENDERED = [
    "Memory/TMaze-v0", "Memory/VisualMatch-v0", "Memory/RepeatFirst-v0",
    "Memory/RepeatPrevious-v0", "Memory/Bandit-v0", "Memory/CardMatch-v0",
]  # fmt: skip


@pytest.mark.parametrize("env_id", RENDERED)
def test_rgb_array_rendering(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    env.step(env.action_space.sample())
    second = env.render()
    for frame in (first, second):
        assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert not np.array_equal(first, second)  # the agent moved / the frame changed


def test_native_vector_env_takes_a_list_of_seeds_like_sync():
    env = gym.make_vec("Memory/RepeatFirst-v0", num_envs=3, vectorization_mode="vector_entry_point")
    first, _ = env.reset(seed=[1, 2, 3])
    again, _ = env.reset(seed=[1, 2, 3])
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match="seeds"):
        env.reset(seed=[1, 2])


@pytest.mark.parametrize("env_id", RENDERED)
def test_native_vector_env_renders_each_copy(env_id):
    env = gym.make_vec(
        env_id, num_envs=2, vectorization_mode="vector_entry_point", render_mode="rgb_array"
    )
    env.reset(seed=0)
    frames = env.render()
    assert len(frames) == 2 and all(f.dtype == np.uint8 and f.shape[2] == 3 for f in frames)


GREEN, RED = (60, 200, 60), (220, 30, 30)


def has_colour(frame, colour):
    return bool((frame == colour).all(axis=-1).any())


@pytest.mark.parametrize(("env_id", "kwargs"), [
    ("Memory/RepeatFirst-v0", {"length": 6}),
    ("Memory/RepeatPrevious-v0", {"length": 6, "delay": 1}),
])  # fmt: skip
def test_a_stream_frame_shows_the_symbols_and_the_answers_scored(env_id, kwargs):
    from envs.repeat import symbol_colours

    env = gym.make(env_id, render_mode="rgb_array", num_symbols=4, **kwargs)
    obs, _ = env.reset(seed=3)
    colours = symbol_colours(4)
    seen = [int(obs.argmax())]
    assert has_colour(env.render(), colours[seen[0]])  # the symbol the agent sees
    right = 0
    for wrong_now in (False, False, True):
        task = env.unwrapped.task
        answer, scored = task.target()
        action = (int(answer[0]) + wrong_now) % 4
        right += bool(scored[0]) and not wrong_now
        obs, *_ = env.step(action)
        seen.append(int(obs.argmax()))
        frame = env.render()
        for symbol in seen:
            assert has_colour(frame, colours[symbol])
        assert has_colour(frame, GREEN) == (right > 0)
    assert has_colour(frame, RED)  # the last answer was wrong


def test_a_bandit_frame_shows_the_arm_pulled_and_whether_it_paid():
    env = gym.make("Memory/Bandit-v0", render_mode="rgb_array", length=20)
    env.reset(seed=0)
    assert not has_colour(env.render(), GREEN) and not has_colour(env.render(), RED)
    for _ in range(10):
        _, reward, *_ = env.step(1)
        frame = env.render()
        assert has_colour(frame, GREEN) == (reward > 0) and has_colour(frame, RED) == (reward == 0)
        # The arm pulled is the right one of the two columns.
        colour = GREEN if reward > 0 else RED
        columns = np.flatnonzero((frame == colour).all(axis=-1).any(axis=0))
        assert columns.min() >= frame.shape[1] // 2


@pytest.mark.parametrize("env_id", sorted(i for i in gym.registry if i.startswith("Memory/")))
def test_sb3s_make_vec_env_makes_every_task(env_id):
    """SB3's `make_vec_env(id)` asks for `render_mode="rgb_array"`: each task takes it (CardMatch
    once refused it, and so sb3-contrib's agents could not be built on it by its id)."""
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(env_id, n_envs=2, seed=0)
    obs = env.reset()
    assert obs.shape[0] == 2
    env.close()
