"""train.py end to end: the run folder, resuming, bad input, a broken env, a NaN loss."""

import math
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import train
from agent import RecurrentPPO

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--env", "CartPole-v1",
    "--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--n-epochs", "1",
    "--lstm-hidden-size", "8", "--net-arch", "8",
    "--no-progress",
]  # fmt: skip


class RaiseAfter(gym.Wrapper):
    """An env that breaks: `step` raises from the 150th step of its copy."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps >= 150:
            raise RuntimeError("simulator crashed")
        return self.env.step(action)


class NanRewardAfter(gym.Wrapper):
    """Rewards become NaN from the 150th step of each copy, so a loss goes non-finite."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, (math.nan if self.steps >= 150 else reward), terminated, truncated, info


class TextObsEnv(gym.Env):
    """Observations are strings: no encoder handles them."""

    observation_space = gym.spaces.Text(5)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return "a", {}

    def step(self, action):
        return "a", 0.0, False, False, {}


if "Test/TextObs-v0" not in gym.registry:
    gym.register("Test/TextObs-v0", entry_point=TextObsEnv, max_episode_steps=10)


def run_script(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("train") / "run"
    result = run_script(
        *TINY,
        "--total-timesteps", "256",
        "--checkpoint-freq", "128",
        "--eval-freq", "128", "--eval-episodes", "2",
        "--env-kwargs", "sutton_barto_reward=True",
        "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return run_dir, result


def test_run_folder_holds_config_model_checkpoints_and_logs(run):
    run_dir, _ = run
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["env"] == "CartPole-v1"
    assert config["env_kwargs"] == {"sutton_barto_reward": True}
    assert config["total_timesteps"] == 256
    assert config["n_steps"] == 32 and config["net_arch"] == [8]
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {
        "step_128.pt",
        "step_256.pt",
        "last.pt",
    }
    assert (run_dir / "best_model.pt").is_file()
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    model = RecurrentPPO.load(run_dir / "model.pt")
    assert model.num_timesteps == 256
    assert model.env_spec["kwargs"] == {"sutton_barto_reward": True}


def test_config_yaml_repeats_the_run_as_a_preset(run):
    run_dir, _ = run
    args = train.train_parser().parse_args(["--config", str(run_dir / "config.yaml")])
    settings = train.resolve_settings(args)
    assert settings.env_id == "CartPole-v1"
    assert settings.config == RecurrentPPO.load(run_dir / "model.pt", device="auto").config
    assert settings.env_kwargs == {"sutton_barto_reward": True}


def test_eval_scalars_reach_tensorboard(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = run
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "eval/mean_reward" in tags and "rollout/ep_rew_mean" in tags
    assert "train/loss" in tags and "train/clip_range" in tags  # sb3-contrib's curves too
    assert [e.value for e in events.Scalars("train/clip_range")] == pytest.approx([0.2] * 4)
    assert [e.step for e in events.Scalars("eval/mean_reward")] == [128, 256]


def test_final_message_gives_paths_and_the_evaluate_command(run):
    run_dir, result = run
    assert str(run_dir / "model.pt") in result.stdout
    assert f"python {ROOT / 'evaluate.py'} {run_dir}" in result.stdout
    assert f"tensorboard --logdir {run_dir / 'tb'}" in result.stdout


def test_resume_continues_the_step_count_in_the_same_folder(run, tmp_path, monkeypatch, capsys):
    # Resume a copy, so the other tests keep seeing the original run.
    import shutil

    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "run"
    shutil.copytree(run[0], copy)
    # The checkpoint/eval schedule (every 128 steps) is the one the run recorded.
    code = train.main(["--resume", str(copy), "--total-timesteps", "384", "--no-progress"])
    assert code == 0
    # CartPole's state is Python objects, not data: the user is told that episodes start anew.
    assert "note: CartPole-v1 cannot save its state as data" in capsys.readouterr().out
    model = RecurrentPPO.load(copy / "checkpoints" / "last.pt")
    assert model.num_timesteps == 384
    assert (copy / "checkpoints" / "step_384.pt").is_file()
    assert yaml.safe_load((copy / "config.yaml").read_text())["total_timesteps"] == 384
    assert len(list((copy / "tb").glob("events.out.tfevents.*"))) == 2
    assert not (tmp_path / "runs").exists()


def test_resume_without_a_higher_target_is_refused(run, capsys):
    assert train.main(["--resume", str(run[0])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--total-timesteps" in err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--env", "CartPol-v1"], "did you mean CartPole-v1"),
        (["--env-kwargs", "length"], "key=value"),
        (["--env-kwargs", "no_such_kwarg=3"], "no_such_kwarg"),
        (["--n-steps", "0"], "n_steps"),
        (["--batch-size", "4096"], "batch_size"),
        (["--target-kl", "-1"], "target_kl"),
        (["--wrapper", "no_such_module:Wrap"], "no_such_module"),
        (["--resume", "no/such/run"], "not found"),
        (["--resume", "{run}", "--n-steps", "64", "--total-timesteps", "999"], "--n-steps"),
        (["--resume", "{run}", "--checkpoint-freq", "0", "--total-timesteps", "999"], "freq"),
        (["--config", "no/such.yaml"], "no/such.yaml"),
        (["--env", "Memory/NoSuchTask-v0"], "NoSuchTask"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    argv, match, run, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{run}", str(run[0])) for a in argv]
    if argv[0] != "--resume":
        argv = [*TINY, "--total-timesteps", "64", *argv]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
    assert match in err
    assert not (tmp_path / "runs").exists()


def test_bad_input_from_the_shell(tmp_path):
    bad_ckpt = tmp_path / "bad.pt"
    bad_ckpt.write_bytes(b"not a checkpoint")
    result = run_script("--resume", str(bad_ckpt), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr and "bad.pt" in result.stderr


def test_unsupported_space_is_a_bad_input(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [*TINY, "--env", f"{__name__}:Test/TextObs-v0", "--total-timesteps", "64"]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "Text" in err


def test_a_broken_env_keeps_what_was_trained(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [*TINY, "--wrapper", f"{__name__}:RaiseAfter", "--total-timesteps", "100000"]
    assert train.main([*argv, "--run-dir", "run", "--checkpoint-freq", "100000"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: environment 'CartPole-v1' failed at step 256:")
    assert "simulator crashed" in err and err.count("\n") == 1
    model = RecurrentPPO.load(tmp_path / "run" / "checkpoints" / "last.pt")
    # Copies crash on their 150th step: rollouts of 64 steps (2 x 32) complete 4 updates.
    assert model.num_timesteps == 256


def test_a_nan_loss_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [*TINY, "--wrapper", f"{__name__}:NanRewardAfter", "--total-timesteps", "100000"]
    assert train.main([*argv, "--run-dir", "run", "--checkpoint-freq", "128"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: non-finite") and err.count("\n") == 1
    assert "last good checkpoint" in err and "--resume" in err
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    model = RecurrentPPO.load(last)
    # NaN rewards start at step 150 of each copy (300 in all): the update after the rollout
    # ending at step 320 fails; the checkpoint at 256 is the last good one.
    assert model.num_timesteps == 256
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
    assert not (tmp_path / "run" / "model.pt").exists()
    obs = np.zeros((1, 4), np.float32)
    model.predict(obs, deterministic=True)


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    same_second = Path("runs") / "CartPole-v1__0__20261203-120000"
    monkeypatch.setattr(train, "default_run_dir", lambda env_id, seed: same_second)
    first = train.claim_run_dir(None, "CartPole-v1", 0)
    second = train.claim_run_dir(None, "CartPole-v1", 0)
    assert first.root == same_second and second.root == Path(f"{same_second}-2")
    assert first.root.is_dir() and second.root.is_dir()


def test_concurrent_runs_never_share_a_folder(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "default_run_dir", lambda env_id, seed: Path("runs") / "x")
    with ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(lambda _: train.claim_run_dir(None, "e", 0).root, range(16)))
    assert len(set(claimed)) == 16


def test_a_run_dir_is_claimed_once(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()  # an existing empty folder may be used
    paths = train.claim_run_dir(folder, "CartPole-v1", 0)
    assert paths.config.exists()
    with pytest.raises(train.UsageError, match="already holds a run"):
        train.claim_run_dir(folder, "CartPole-v1", 0)


def test_two_runs_in_one_second_keep_their_own_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "default_run_dir", lambda env_id, seed: Path("runs") / "same")
    argv = [*TINY, "--total-timesteps", "64", "--eval-freq", "0"]
    assert train.main([*argv, "--learning-rate", "0.001"]) == 0
    assert train.main([*argv, "--learning-rate", "0.0001"]) == 0
    first, second = tmp_path / "runs" / "same", tmp_path / "runs" / "same-2"
    assert yaml.safe_load((first / "config.yaml").read_text())["learning_rate"] == 0.001
    assert yaml.safe_load((second / "config.yaml").read_text())["learning_rate"] == 0.0001
    for run_dir in (first, second):
        assert (run_dir / "model.pt").is_file()
        assert len(list((run_dir / "tb").glob("events.out.tfevents.*"))) == 1


def test_log_memory_without_matplotlib_is_refused_before_training(tmp_path, monkeypatch, capsys):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a),
    )
    monkeypatch.chdir(tmp_path)
    assert train.main([*TINY, "--total-timesteps", "64", "--log-memory"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --log-memory") and "pip install matplotlib" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["file", "file/run", "file/deeper/run"])
def test_a_run_dir_that_cannot_be_a_folder_is_one_line_exit_2(where, tmp_path, monkeypatch, capsys):
    # As root, chmod cannot make a folder read-only: a path through a file cannot be written.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("mine")
    argv = [*TINY, "--total-timesteps", "64", "--run-dir", str(tmp_path / where)]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1, err
    assert "is a file, not a folder" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert (tmp_path / "file").read_text() == "mine"


def test_a_default_runs_folder_that_is_a_file_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").write_text("mine")
    assert train.main([*TINY, "--total-timesteps", "64"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "runs" in err, err
    assert (tmp_path / "runs").read_text() == "mine"


def test_a_negative_seed_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys):
    # It used to write a run folder and a checkpoint, then fail in the random generator.
    monkeypatch.chdir(tmp_path)
    argv = [*TINY, "--total-timesteps", "64", "--seed", "-1", "--run-dir", str(tmp_path / "run")]
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "seed" in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_unreadable_last_checkpoint_points_at_the_newest_intact_step(
    run, tmp_path, monkeypatch, capsys
):
    import shutil

    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "run"
    shutil.copytree(run[0], copy)
    (copy / "model.pt").unlink()
    last = copy / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])  # a copy cut short, a full disk
    newest = copy / "checkpoints" / "step_256.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    assert train.main(["--resume", str(copy), "--total-timesteps", "384"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read checkpoint") and err.count("\n") == 1, err
    intact = copy / "checkpoints" / "step_128.pt"
    assert err.rstrip().endswith(f"--resume {intact}")
    # The advice works: the run goes on from step 128, in its own folder.
    argv = ["--resume", str(intact), "--total-timesteps", "384", "--no-progress"]
    assert train.main(argv) == 0
    assert RecurrentPPO.load(last).num_timesteps == 384
