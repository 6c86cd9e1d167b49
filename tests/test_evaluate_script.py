"""evaluate.py and the episode loop: exact episode counts, memory reset at episode starts,
success rates, the JSON report, refusal of corrupt and unsafe checkpoints."""

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import evaluate as evaluate_script
from agent import EnvError, RecurrentPPO
from agent.run.evaluation import evaluate, make_eval_env
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[1]
GUESS = f"{__name__}:Test/Guess-v0"


class GuessEnv(gym.Env):
    """The observation is the step number within the episode; episodes last 1 to `length`
    steps at random. On the last step, `success` says whether the action was 1; reward 1 then."""

    action_space = gym.spaces.Discrete(2)

    def __init__(self, length: int = 4, report_success: bool = True) -> None:
        self.length = length
        self.report_success = report_success
        self.observation_space = gym.spaces.Box(0.0, float(length), (1,), np.float32)
        self.t = 0
        self.horizon = 1

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.horizon = int(self.np_random.integers(1, self.length + 1))
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.horizon
        info = {"success": bool(action == 1)} if done and self.report_success else {}
        reward = float(done and action == 1)
        return np.array([float(self.t)], np.float32), reward, done, False, info


if "Test/Guess-v0" not in gym.registry:
    gym.register("Test/Guess-v0", entry_point=GuessEnv)


class StepCounter:
    """A fake recurrent policy whose memory counts the steps since the episode start; it checks
    at each call that the memory matches the observation (the env's step number)."""

    observation_space = gym.spaces.Box(0.0, 4.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, action: int = 1) -> None:
        self.action = action
        self.calls = 0

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        n = len(observation)
        memory = np.zeros(n) if state is None else state[0].copy()
        memory[np.asarray(episode_start, bool)] = 0.0
        np.testing.assert_array_equal(memory, observation[:, 0])
        self.calls += 1
        return np.full(n, self.action), (memory + 1,)


@pytest.mark.parametrize(("n_episodes", "n_envs"), [(7, 3), (1, 4), (10, 1)])
def test_counts_exactly_n_episodes_and_resets_memory_at_starts(n_episodes, n_envs):
    policy = StepCounter()
    results = evaluate(policy, GUESS, n_episodes=n_episodes, seed=3, n_envs=n_envs)
    assert results["episodes"] == n_episodes
    assert 1.0 <= results["mean_length"] <= 4.0
    assert policy.calls >= results["mean_length"] * n_episodes / n_envs


class BatchRecorder(StepCounter):
    """A StepCounter that records how many copies each call stepped."""

    def __init__(self) -> None:
        super().__init__()
        self.batch_sizes: list[int] = []

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        self.batch_sizes.append(len(observation))
        return super().predict(observation, state, episode_start, deterministic)


@pytest.mark.parametrize(("n_episodes", "copies"), [(6, 6), (40, 32)])
def test_by_default_a_copy_per_episode_up_to_the_cap(n_episodes, copies):
    """One call per step of the longest episode, not per step of a copy's several episodes:
    periodic evaluations and evaluate.py take this default."""
    policy = BatchRecorder()
    results = evaluate(policy, GUESS, n_episodes=n_episodes, seed=3)
    assert results["episodes"] == n_episodes
    assert set(policy.batch_sizes) == {copies}
    if n_episodes <= copies:
        assert policy.calls <= 4  # one episode of at most 4 steps per copy


def test_success_rate_and_returns():
    assert evaluate(StepCounter(action=1), GUESS, n_episodes=6)["success_rate"] == 1.0
    failing = evaluate(StepCounter(action=0), GUESS, n_episodes=6)
    assert failing["success_rate"] == 0.0
    assert failing["mean_return"] == 0.0 and failing["std_return"] == 0.0
    silent = evaluate(StepCounter(), GUESS, {"report_success": False}, n_episodes=6)
    assert silent["success_rate"] is None
    assert silent["mean_return"] == 1.0


def test_same_seed_same_results():
    a = evaluate(StepCounter(), GUESS, n_episodes=9, seed=1)
    b = evaluate(StepCounter(), GUESS, n_episodes=9, seed=1)
    assert a == b


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    model = RecurrentPPO(
        GUESS, n_envs=2, n_steps=16, batch_size=32, lstm_hidden_size=8, net_arch=[8], device="cpu"
    )
    model.learn(64)
    model.save(root / "checkpoints" / "last.pt")
    model.save(root / "model.pt")
    return root


def run_script(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_json_report(run_dir, tmp_path):
    out = tmp_path / "result.json"
    result = run_script(str(run_dir), "--episodes", "12", "--seed", "5", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "model.pt" in result.stdout and "success" in result.stdout
    report = json.loads(out.read_text())
    assert report["episodes"] == 12
    assert isinstance(report["mean_return"], float) and 0.0 <= report["mean_return"] <= 1.0
    assert isinstance(report["std_return"], float) and report["std_return"] >= 0.0
    assert 1.0 <= report["mean_length"] <= 4.0
    assert 0.0 <= report["success_rate"] <= 1.0
    # Deterministic: the success rate is the mean return of this env.
    assert report["success_rate"] == pytest.approx(report["mean_return"])


def test_env_kwargs_override_the_recorded_ones(run_dir, tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = [str(run_dir), "--episodes", "5", "--json", str(out), "--env-kwargs"]
    assert evaluate_script.main([*argv, "report_success=False"]) == 0
    assert json.loads(out.read_text())["success_rate"] is None
    assert "report_success" in capsys.readouterr().out


def test_a_run_dir_without_model_uses_last_checkpoint(run_dir, tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(
        (run_dir / "checkpoints" / "last.pt").read_bytes()
    )
    assert evaluate_script.main([str(tmp_path), "--episodes", "2"]) == 0
    assert "last checkpoint" in capsys.readouterr().out


def test_loads_on_cpu_when_asked(run_dir):
    assert evaluate_script.main([str(run_dir), "--episodes", "2", "--device", "cpu"]) == 0


def one_line_error(code: int, err: str) -> bool:
    return code == 2 and err.startswith("error:") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["no/such/run"], "not found"),
        (["{run}", "--env-kwargs", "length"], "key=value"),
        (["{run}", "--env-kwargs", "no_such_kwarg=1"], "no_such_kwarg"),
        # names of `RecurrentPPO.load`'s own parameters reach the env, not `load`
        (["{run}", "--env-kwargs", "device=cpu"], "device"),
        (["{run}", "--env-kwargs", "env=None"], "env"),
        (["{run}", "--episodes", "0"], "--episodes"),
        (["{run}", "--device", "tpu"], "device"),
        (["{run}", "--env-kwargs", "length=8"], "spaces"),
    ],
)
def test_bad_input(argv, match, run_dir, capsys):
    code = evaluate_script.main([a.replace("{run}", str(run_dir)) for a in argv])
    err = capsys.readouterr().err
    assert one_line_error(code, err), err
    assert match in err


def test_an_empty_run_dir(tmp_path, capsys):
    code = evaluate_script.main([str(tmp_path)])
    assert one_line_error(code, capsys.readouterr().err)


@pytest.mark.parametrize("cut", [0, 100, -100])
def test_corrupt_checkpoint(run_dir, tmp_path, cut, capsys):
    data = (run_dir / "model.pt").read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"" if cut == 0 else data[:cut] if cut > 0 else data[:cut] + b"x" * 100)
    code = evaluate_script.main([str(bad)])
    err = capsys.readouterr().err
    assert one_line_error(code, err) and "bad.pt" in err


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "memory-ppo", "format_version": 1, "x": Payload(marker)}, evil)
    result = run_script(str(evil))
    assert one_line_error(result.returncode, result.stderr), result.stderr
    assert "Traceback" not in result.stderr and "refused" in result.stderr
    assert not marker.exists()


def test_video_without_moviepy_says_how_to_install_it(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "moviepy", None)  # find_spec and `import moviepy` now fail
    code = evaluate_script.main([str(run_dir), "--video", str(tmp_path / "videos")])
    err = capsys.readouterr().err
    assert one_line_error(code, err) and "pip install moviepy" in err
    assert not (tmp_path / "videos").exists()
    # The library checks too, for callers that do not come through evaluate.py.
    with pytest.raises(EnvError, match="pip install moviepy"):
        make_eval_env("Memory/TMaze-v0", video_dir=tmp_path / "videos")
    assert not (tmp_path / "videos").exists()


def test_video_records_the_episodes_of_a_renderable_env(tmp_path, capsys):
    require("moviepy")
    model = RecurrentPPO(
        "Memory/TMaze-v0", env_kwargs={"length": 3}, n_envs=2, n_steps=8, batch_size=16,
        lstm_hidden_size=4,
    )  # fmt: skip
    model.save(tmp_path / "model.pt")
    videos = tmp_path / "videos"
    argv = [str(tmp_path), "--episodes", "3", "--n-envs", "1", "--video", str(videos)]
    assert evaluate_script.main(argv) == 0
    assert len(list(videos.glob("*.mp4"))) >= 3


def test_video_of_an_env_that_cannot_render_is_a_clear_error(run_dir, tmp_path, capsys):
    require("moviepy")
    code = evaluate_script.main([str(run_dir), "--video", str(tmp_path / "videos")])
    err = capsys.readouterr().err
    assert one_line_error(code, err) and "render" in err


def test_an_unreadable_last_checkpoint_points_at_the_newest_intact_step(run_dir, tmp_path, capsys):
    good = (run_dir / "checkpoints" / "last.pt").read_bytes()
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "last.pt").write_bytes(good[: len(good) // 2])  # cut short
    (checkpoints / "step_128.pt").write_bytes(good[:100])  # newer, but damaged too
    (checkpoints / "step_64.pt").write_bytes(good)
    (checkpoints / "step_32.pt").write_bytes(good)
    code = evaluate_script.main([str(tmp_path), "--episodes", "2"])
    err = capsys.readouterr().err
    assert one_line_error(code, err), err
    intact = checkpoints / "step_64.pt"
    assert "last.pt" in err and "corrupt or truncated" in err
    assert f"python evaluate.py {intact}" in err and f"train.py --resume {intact}" in err
    assert evaluate_script.main([str(intact), "--episodes", "2"]) == 0
