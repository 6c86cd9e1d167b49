"""uint8 grids of codes read as categories (`image_encoder: embed` and `onehot`), Dict observations
with a text part, and ids of packages that register their envs on import (MiniGrid)."""

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from agent import RecurrentPPO
from agent.algorithm.buffer import RolloutBuffer
from agent.algorithm.checkpoint import (
    CheckpointError,
    auto_as_it_was,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)
from agent.algorithm.sequences import make_minibatch
from agent.environment.vec_env import (
    EnvError,
    check_env_id,
    drop_unreadable_parts,
    qualified_env_id,
)
from agent.networks import encoders
from agent.networks.encoders import (
    DEDUPLICATE_FROM,
    CodeGridEncoder,
    RowSums,
    distinct,
    grid_hashes,
    make_encoder,
)
from agent.networks.observations import Frames
from tests.replay_check import replay_errors


def grids(shape, seed=0, high=11):
    return torch.as_tensor(np.random.default_rng(seed).integers(0, high, shape, dtype=np.uint8))


@pytest.mark.parametrize("channels_last", [True, False])
def test_embed_gives_each_cell_the_sum_of_its_codes_rows(channels_last):
    """Each channel has its own table; a cell is the sum over channels of the rows of its codes,
    wherever the cell is (one table for all cells), and the cells are flattened in order."""
    shape = (5, 4, 3) if channels_last else (3, 5, 4)
    enc = CodeGridEncoder(shape, "embed", dims=6)
    x = grids((2, *shape))
    out = enc(x).reshape(2, 5, 4, 6)
    cells = x if channels_last else x.permute(0, 2, 3, 1)  # [N, h, w, c]
    table = enc.table.weight
    for n, i, j in [(0, 0, 0), (1, 4, 3), (0, 2, 1)]:
        expected = sum(table[ch * 256 + int(cells[n, i, j, ch])] for ch in range(3))
        torch.testing.assert_close(out[n, i, j], expected)


def test_embed_tells_neighbouring_codes_apart_as_well_as_distant_ones():
    """A key (5) is as far from a ball (6) as from a wall (2): what the range-scaled floats of
    `flatten` could not say, whose features for 5 and 6 differ by a sixth of those for 2 and 6."""
    enc = CodeGridEncoder((1, 1, 3), "embed", dims=8)
    torch.manual_seed(0)
    torch.nn.init.normal_(enc.table.weight)
    code = {v: enc(torch.tensor([[[[v, 0, 0]]]], dtype=torch.uint8)) for v in (2, 5, 6)}
    near, far = (code[5] - code[6]).norm(), (code[2] - code[6]).norm()
    assert near > 0.3 * far


def test_onehot_is_the_grids_one_hot_vector_times_a_matrix():
    shape = (3, 2, 3)
    enc = CodeGridEncoder(shape, "onehot", features=5)
    x = grids((4, *shape), seed=1, high=256)
    one_hot = torch.nn.functional.one_hot(x.long(), 256).reshape(4, -1).float()  # [N, h*w*c*256]
    torch.testing.assert_close(enc(x), one_hot @ enc.table.weight)


def test_codes_encoders_keep_the_leading_dimensions_and_pass_gradients():
    for kind in ("embed", "onehot"):
        enc = make_encoder(spaces.Box(0, 255, (7, 7, 3), np.uint8), kind)
        assert isinstance(enc, CodeGridEncoder)
        out = enc(grids((3, 2, 7, 7, 3)))
        assert out.shape == (3, 2, enc.output_size)
        out.sum().backward()
        assert enc.table.weight.grad.abs().sum() > 0


def test_the_code_choices_train_and_reload(tmp_path):
    """A model with each encoding learns one update on a uint8 grid task and reloads equal."""
    for kind in ("embed", "onehot"):
        model = RecurrentPPO("Memory/VisualMatch-v0", n_envs=2, n_steps=8, batch_size=16,
                             image_encoder=kind, device="cpu")  # fmt: skip
        before = model.policy.encoder.table.weight.clone()
        model.learn(16)
        assert not torch.equal(before, model.policy.encoder.table.weight)
        model.save(tmp_path / f"{kind}.pt")
        loaded = RecurrentPPO.load(tmp_path / f"{kind}.pt", device="cpu")
        assert loaded.config.image_encoder == kind
        torch.testing.assert_close(
            loaded.policy.encoder.table.weight, model.policy.encoder.table.weight
        )


# ------------------------------------------------------------------ checkpoints' `auto` ---


def test_checkpoints_written_when_auto_flattened_small_grids_load_flattened(tmp_path):
    """A checkpoint without `image_encoder_auto` (written when `auto` flattened grids of at most
    16x16 cells) loads with `flatten`, the weights it holds."""
    model = RecurrentPPO("Memory/VisualMatch-v0", n_envs=2, n_steps=8, batch_size=16,
                         image_encoder="flatten", device="cpu")  # fmt: skip
    model.save(tmp_path / "model.pt")
    payload = load_checkpoint(tmp_path / "model.pt")
    config = json.loads(payload["config"])
    config["image_encoder"] = "auto"
    payload["config"] = json.dumps(config)
    del payload["image_encoder_auto"]
    save_checkpoint(payload, tmp_path / "old.pt")
    old = RecurrentPPO.load(tmp_path / "old.pt", device="cpu")
    assert old.config.image_encoder == "flatten"
    for key, value in model.policy.state_dict().items():
        assert torch.equal(old.policy.state_dict()[key], value)
    payload["image_encoder_auto"] = "2"  # as this version writes it: `auto` stays
    assert read_metadata(payload, "new.pt").config.image_encoder == "auto"


def test_auto_as_it_was_by_the_grids_a_space_holds():
    """`auto`'s version 1: small grids flattened, every other through the 3x3 `cnn` (which
    `auto` now keeps for mid-sized ones only)."""
    small, large = (
        spaces.Box(0, 255, (7, 7, 3), np.uint8),
        spaces.Box(0, 255, (64, 64, 3), np.uint8),
    )
    assert auto_as_it_was(small, "m.pt") == "flatten"
    assert auto_as_it_was(spaces.Dict({"a": large}), "m.pt") == "cnn"
    assert auto_as_it_was(spaces.Box(-1, 1, (4,)), "m.pt") == "auto"
    with pytest.raises(CheckpointError, match="with both sizes"):
        auto_as_it_was(spaces.Tuple([small, large]), "m.pt")


# --------------------------------------------------------------------- text observations ---


class WithText(gym.Env):
    """A Box observation beside a text part (as MiniGrid's mission), of which nothing is read."""

    observation_space = spaces.Dict(
        {"x": spaces.Box(-1, 1, (2,), np.float32), "mission": spaces.Text(20)}
    )
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return {"x": np.zeros(2, np.float32), "mission": "go"}, {}

    def step(self, action):
        return {"x": np.ones(2, np.float32), "mission": "go"}, 1.0, True, False, {}


def test_a_text_part_is_left_out_with_one_warning():
    env = WithText()
    with pytest.warns(UserWarning, match=r"'mission' \(Text\) left out"):
        wrapped = drop_unreadable_parts(env)
    assert list(wrapped.observation_space.spaces) == ["x"]
    assert list(wrapped.reset()[0]) == ["x"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second copy says nothing more
        assert list(drop_unreadable_parts(WithText()).observation_space.spaces) == ["x"]
    box = gym.make("CartPole-v1")
    assert drop_unreadable_parts(box) is box


def test_an_env_with_a_text_part_trains():
    gym.register("TestWithText-v0", entry_point=WithText)
    try:
        model = RecurrentPPO("TestWithText-v0", n_envs=2, n_steps=8, batch_size=16, device="cpu")
        model.learn(16)
        assert model.policy.encoder.output_size == 2
    finally:
        gym.registry.pop("TestWithText-v0")


# ------------------------------------------------------------------- packages' env ids ---


def test_minigrid_and_popgym_ids_need_no_module_prefix():
    assert qualified_env_id("MiniGrid-NoSuchTask-v0") == "minigrid:MiniGrid-NoSuchTask-v0"
    assert qualified_env_id("BabyAI-NoSuchTask-v0") == "minigrid:BabyAI-NoSuchTask-v0"
    assert qualified_env_id("popgym-NoSuchTask-v0") == "popgym:popgym-NoSuchTask-v0"
    assert qualified_env_id("CartPole-v1") == "CartPole-v1"
    assert qualified_env_id("other:MiniGrid-X-v0") == "other:MiniGrid-X-v0"


def test_a_minigrid_id_without_minigrid_names_the_extra(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "minigrid", None)
    with pytest.raises(EnvError, match=r'pip install -e "\.\[minigrid\]"'):
        check_env_id("MiniGrid-NoSuchTask-v0")


# ----------------------------------------------------------- distinct views, one CNN pass ---


@pytest.mark.parametrize("shape", [(6, 6, 3), (8, 8, 2)])  # 108 bytes (padded) and 128
def test_distinct_finds_one_copy_of_each_grid(shape):
    base = grids((5, *shape), seed=2, high=256)
    order = torch.tensor([3, 0, 3, 1, 1, 4, 0, 3])
    first, index = distinct(base[order])
    assert len(first) == 4  # views 0, 1, 3, 4
    assert torch.equal(base[order][first][index], base[order])


def test_grids_that_share_a_hash_are_still_told_apart(monkeypatch):
    base = grids((5, 6, 6, 3), seed=2, high=256)
    order = torch.tensor([3, 0, 3, 1, 1, 4, 0, 3])
    monkeypatch.setattr(encoders, "grid_hashes", lambda rows: np.zeros(len(rows), np.uint64))
    first, index = distinct(base[order])
    assert len(first) == 4 and torch.equal(base[order][first][index], base[order])


def test_equal_grids_hash_equal_and_these_unequal_ones_do_not():
    rows = grids((6, 7, 7, 3), seed=5, high=256).numpy().reshape(6, -1)
    hashes = grid_hashes(np.concatenate([rows, rows[::-1]]))
    assert np.array_equal(hashes[:6], hashes[6:][::-1]) and len(set(hashes[:6])) == 6


def test_a_batch_of_repeated_views_gives_the_features_and_gradients_of_one_pass_each():
    """The CNN runs once per distinct view of a minibatch; features and gradients are those of
    a pass per copy (the sum over copies), within float rounding."""
    shape = (36, 36, 3)
    views = grids((6, *shape), seed=3, high=256)
    batch = views[
        torch.randint(0, 6, (DEDUPLICATE_FROM * 2,), generator=torch.Generator().manual_seed(0))
    ]
    enc = make_encoder(spaces.Box(0, 255, shape, np.uint8), "nature")
    passes = []
    enc.encode = (lambda encode: lambda g: passes.append(len(g)) or encode(g))(enc.encode)
    out = enc(batch)
    assert passes == [6]
    out.pow(2).sum().backward()
    deduplicated = [p.grad.clone() for p in enc.parameters()]
    enc.zero_grad()
    reference = enc.encode(batch)  # one pass per copy
    torch.testing.assert_close(out, reference)
    reference.pow(2).sum().backward()
    for grad, p in zip(deduplicated, enc.parameters(), strict=True):
        torch.testing.assert_close(grad, p.grad, rtol=1e-4, atol=1e-6)


def test_views_that_all_differ_take_one_pass_over_the_batch():
    shape = (36, 36, 3)
    enc = make_encoder(spaces.Box(0, 255, shape, np.uint8), "nature")
    passes = []
    enc.encode = (lambda encode: lambda g: passes.append(len(g)) or encode(g))(enc.encode)
    enc(grids((DEDUPLICATE_FROM, *shape), seed=4, high=256))
    assert passes == [DEDUPLICATE_FROM]


@pytest.mark.parametrize("width", [6, RowSums.NARROW + 1])  # added transposed, and as rows
def test_row_sums_are_embedding_sums_in_values_and_gradients(width):
    table = torch.randn(40, width, requires_grad=True)
    rows = torch.randint(0, 40, (50, 3))
    grad = torch.randn(50, width)
    ours = RowSums.apply(table, rows)
    (ours_grad,) = torch.autograd.grad(ours, table, grad)
    reference = torch.nn.functional.embedding(rows, table).sum(dim=1)
    (reference_grad,) = torch.autograd.grad(reference, table, grad)
    torch.testing.assert_close(ours, reference)
    torch.testing.assert_close(ours_grad, reference_grad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_distinct_on_cuda_finds_what_it_finds_on_the_cpu():
    base = grids((5, 6, 6, 3), seed=2, high=256)
    batch = base[torch.tensor([3, 0, 3, 1, 1, 4, 0, 3])]
    first, index = distinct(batch.cuda())
    assert torch.equal(batch.cuda()[first][index], batch.cuda())
    assert len(first) == len(distinct(batch)[0])


def test_frames_give_the_features_and_gradients_of_the_frames_they_stand_for():
    """A leaf given as distinct frames and an index: the CNN sees each frame the index uses
    once, and features and gradients are those of the frames themselves."""
    shape = (36, 36, 3)
    table = grids((5, *shape), seed=6, high=256)
    index = torch.tensor([[3, 0, 3], [1, 1, 0]])  # frame 2 and 4 unused
    enc = make_encoder(spaces.Box(0, 255, shape, np.uint8), "nature")
    passes = []
    enc.encode = (lambda encode: lambda g: passes.append(len(g)) or encode(g))(enc.encode)
    out = enc(Frames(table, index))
    assert passes == [3] and out.shape == (2, 3, enc.output_size)
    out.pow(2).sum().backward()
    grouped = [p.grad.clone() for p in enc.parameters()]
    enc.zero_grad()
    reference = enc.encode(table[index].reshape(-1, *shape)).reshape(out.shape)
    torch.testing.assert_close(out, reference)
    reference.pow(2).sum().backward()
    for grad, p in zip(grouped, enc.parameters(), strict=True):
        torch.testing.assert_close(grad, p.grad, rtol=1e-4, atol=1e-6)


CODES = "minigrid.wrappers:ImgObsWrapper"


def test_a_rollout_of_repeated_frames_trains_on_its_distinct_frames_and_replays_exactly():
    """The rollout's frames are grouped once; each minibatch holds `Frames` that stand for its
    padded observations, and replaying them recomputes the rollout's log-probs and values."""
    model = RecurrentPPO(
        "minigrid:MiniGrid-MemoryS7-v0", n_envs=4, n_steps=64, batch_size=64,
        image_encoder="cnn", lstm_hidden_size=16, seed=1, wrappers=[CODES],
    )  # fmt: skip
    model._start_episodes()
    model.collect_rollout()
    buffer = model.collect_rollout()
    model.compute_advantages(buffer)
    flat = buffer.observations.reshape(-1, *buffer.observations.shape[2:])
    for batch in buffer.minibatches(64, model.generator, False):
        assert isinstance(batch.observations, Frames)
        assert len(batch.observations.table) < len(flat) // 2
    lp_err, v_err, _ = replay_errors(model, buffer)
    assert lp_err < 1e-5 and v_err < 1e-5


@pytest.mark.parametrize("encoder", ["cnn", "embed"])  # frames grouped, and none (a default)
def test_a_dict_observation_has_its_frames_grouped_and_its_other_parts_as_they_are(encoder):
    space = spaces.Dict(
        {"frame": spaces.Box(0, 255, (6, 6, 3), np.uint8), "vec": spaces.Box(-1, 1, (2,))}
    )
    T, E = 8, 3
    leaves = make_encoder(space, encoder).frame_leaves()
    assert leaves == {"frame": encoder == "cnn", "vec": False}
    state = torch.zeros(2, 1, E, 4)
    buffer = (
        RolloutBuffer(T, E, space, state, "cpu", 4, leaves)
        if encoder == "cnn"
        else RolloutBuffer(T, E, space, state, "cpu", 4)  # the default: no leaf grouped
    )
    views = grids((3, 6, 6, 3), seed=7, high=256)
    rng = np.random.default_rng(0)
    for t in range(T):
        obs = {"frame": views[rng.integers(0, 3, E)], "vec": torch.randn(E, 2)}
        buffer.add(
            t, obs, state, np.full(E, t % 5 == 0), np.ones(E, bool),
            torch.zeros(E), torch.zeros(E), torch.zeros(E),
        )  # fmt: skip
    buffer.finish(torch.zeros(E))
    buffer.advantages = buffer.returns = torch.zeros(T, E)
    chosen = np.arange(len(buffer.sequences.length))
    batch = buffer.batch(chosen, normalize_advantage=False)
    index = make_minibatch(buffer.sequences, chosen, E, np.ones(T * E, bool), "cpu").index
    frames, vec = batch.observations["frame"], batch.observations["vec"]
    if encoder == "cnn":
        assert isinstance(frames, Frames) and len(frames.table) == 3
        frames = frames.dense()
    else:
        assert isinstance(frames, torch.Tensor)
    assert torch.equal(frames, buffer.observations["frame"].reshape(T * E, 6, 6, 3)[index])
    assert torch.equal(vec, buffer.observations["vec"].reshape(T * E, 2)[index])
