"""`evaluate.py --video`: exactly the requested episodes, each filmed whole, frames large enough
to see, and a missing render dependency (pygame) caught up front, in one line, leaving no folder."""

import sys

import gymnasium as gym
import numpy as np
import pytest

import evaluate as evaluate_script
from agent import RecurrentPPO
from agent.run.evaluation import MIN_VIDEO_HEIGHT, UpscaleFrames, evaluate
from tests.conftest import require
from tests.test_evaluate_script import one_line_error

moviepy = require("moviepy")

LENGTH = 3
"""T-maze corridor length: every episode is LENGTH + 1 steps, so LENGTH + 2 frames with reset's."""


def saved_model(folder, env_id, **env_kwargs):
    """An untrained model of `env_id` saved as `folder/model.pt`; returns `folder`."""
    model = RecurrentPPO(
        env_id, env_kwargs=env_kwargs, n_envs=1, n_steps=8, batch_size=8, lstm_hidden_size=4,
        net_arch=[4], device="cpu",
    )  # fmt: skip
    model.save(folder / "model.pt")
    return folder


@pytest.fixture(scope="module")
def tmaze_run(tmp_path_factory):
    return saved_model(tmp_path_factory.mktemp("tmaze"), "Memory/TMaze-v0", length=LENGTH)


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    return saved_model(tmp_path_factory.mktemp("cartpole"), "CartPole-v1")


def frames_of(video):
    clip = moviepy.VideoFileClip(str(video))
    try:
        return list(clip.iter_frames())
    finally:
        clip.close()


@pytest.fixture(scope="module")
def tmaze_videos(tmaze_run, tmp_path_factory):
    videos = tmp_path_factory.mktemp("videos") / "tmaze"
    assert evaluate_script.main([str(tmaze_run), "--episodes", "3", "--video", str(videos)]) == 0
    return sorted(videos.glob("*.mp4"))


def test_records_exactly_the_requested_episodes_each_whole(tmaze_videos):
    assert len(tmaze_videos) == 3
    for video in tmaze_videos:
        assert len(frames_of(video)) == LENGTH + 2


def test_small_frames_are_filmed_at_a_viewable_height(tmaze_videos):
    env = gym.make("Memory/TMaze-v0", length=LENGTH, render_mode="rgb_array")
    env.reset(seed=0)
    height, width = env.render().shape[:2]
    frame = frames_of(tmaze_videos[0])[0]
    assert height < MIN_VIDEO_HEIGHT <= frame.shape[0]
    assert frame.shape[1] * height == frame.shape[0] * width  # the aspect ratio is kept


def test_upscaling_is_nearest_neighbour_and_capped_in_width():
    env = UpscaleFrames(gym.make("Memory/TMaze-v0", length=10, render_mode="rgb_array"))
    env.reset(seed=0)
    small, big = env.unwrapped.render(), env.render()
    factor = -(-MIN_VIDEO_HEIGHT // small.shape[0])
    assert big.shape == (small.shape[0] * factor, small.shape[1] * factor, 3)
    np.testing.assert_array_equal(big[::factor, ::factor], small)
    np.testing.assert_array_equal(big[factor - 1 :: factor, factor - 1 :: factor], small)
    strip = UpscaleFrames(env.unwrapped, max_width=2 * small.shape[1])
    assert strip.render().shape[:2] == (2 * small.shape[0], 2 * small.shape[1])


def test_cartpole_video_with_pygame(cartpole_run, tmp_path):
    require("pygame")
    videos = tmp_path / "videos"
    assert evaluate_script.main([str(cartpole_run), "--episodes", "1", "--video", str(videos)]) == 0
    [video] = videos.glob("*.mp4")
    assert len(frames_of(video)) > 1


def test_missing_pygame_is_one_line_exit_2_and_leaves_no_folder(
    cartpole_run, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "pygame", None)  # `import pygame` now fails
    videos = tmp_path / "new" / "videos"
    code = evaluate_script.main([str(cartpole_run), "--episodes", "1", "--video", str(videos)])
    err = capsys.readouterr().err
    assert one_line_error(code, err), err
    assert "pip install pygame" in err
    assert not (tmp_path / "new").exists()


def test_an_error_after_the_recorder_is_made_leaves_no_folder(tmp_path):
    class WrongSpaces:
        observation_space = gym.spaces.Discrete(3)
        action_space = gym.spaces.Discrete(2)

    with pytest.raises(ValueError, match="spaces"):
        evaluate(WrongSpaces(), "Memory/TMaze-v0", n_episodes=1, video_dir=tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("Memory/RepeatFirst-v0", {"length": 4}),
        ("Memory/RepeatPrevious-v0", {"length": 4, "delay": 1}),
        ("Memory/Bandit-v0", {"length": 4}),
    ],
)
def test_symbol_stream_and_bandit_videos(env_id, kwargs, tmp_path):
    run = saved_model(tmp_path, env_id, **kwargs)
    videos = tmp_path / "videos"
    assert evaluate_script.main([str(run), "--episodes", "1", "--video", str(videos)]) == 0
    [video] = videos.glob("*.mp4")
    frames = frames_of(video)
    assert len(frames) == kwargs["length"] + 1  # reset's frame, then one per step
    assert frames[0].shape[0] >= MIN_VIDEO_HEIGHT
