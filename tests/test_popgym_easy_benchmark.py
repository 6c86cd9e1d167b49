"""benchmarks/popgym_easy.py: its environment list, that each trains, its results lines and
tables."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

from agent import RecurrentPPO
from benchmarks import popgym_easy as bench
from tests.conftest import require

require("popgym")
require("mazelib")  # the Labyrinth tasks'


def test_the_list_is_every_easy_env_popgym_registers():
    registered = {
        i.removeprefix("popgym-").removesuffix("Easy-v0")
        for i in gym.registry
        if i.startswith("popgym-") and i.endswith("Easy-v0")
    }
    assert set(bench.ENVS) == registered and len(bench.ENVS) == len(registered)


@pytest.mark.parametrize("name", bench.ENVS)
def test_each_env_trains_at_the_defaults_but_size(name):
    model = RecurrentPPO(bench.env_id(name), n_envs=2, n_steps=8, batch_size=16)
    model.learn(16)
    assert model.num_timesteps == 16
    model.close()


def fake_experiment(out, name, cell, budget, curves, length=1.0):
    """An experiment folder as tune.py leaves it: results.csv and one run folder per seed, each
    with `rollout/ep_rew_mean` logged at the given steps, episodes of `length` steps."""
    from torch.utils.tensorboard import SummaryWriter

    folder = bench.experiment(out, name, cell, budget, len(curves))
    rows = ["trial,status,seed,rollout/ep_rew_mean,steps,wall_time_s,restarts,path"]
    for seed, curve in enumerate(curves):
        run = folder / f"seed{seed}"
        with SummaryWriter(str(run / "tb")) as writer:
            for step, value in curve:
                writer.add_scalar(bench.TAG, value, step)
                writer.add_scalar("rollout/ep_len_mean", length, step)
        rows.append(f"seed{seed},done,{seed},{curve[-1][1]},{budget},{10.0 + seed},0,{run}")
    (folder / "results.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_a_trial_line_holds_the_maximum_over_full_windows_and_is_added_once(tmp_path):
    """With 16 copies and 1-step episodes (2 steps each, the autoreset's), 100 episodes have
    surely ended from step (100 + 16) * 2 = 232 on: the 0.99 at step 200 is not counted."""
    results = tmp_path / "results"
    results.mkdir()
    curves = [
        [(100, 0.99), (200, 0.99), (300, -0.5), (400, 0.8), (500, 0.6)],
        [(100, 0.1), (300, 0.2), (400, 0.3)],
    ]
    folder = fake_experiment(tmp_path / "runs", "RepeatFirst", "gru", 500, curves)
    assert bench.collect(folder, results, "RepeatFirst", "gru", 500) == 2
    assert bench.collect(folder, results, "RepeatFirst", "gru", 500) == 0
    lines = [json.loads(x) for x in (results / "results.jsonl").read_text().splitlines()]
    first = next(x for x in lines if x["seed"] == 0)
    assert first["mmer"] == pytest.approx(0.8) and first["mmer_step"] == 400
    assert first["full_from"] == 300 and first["final"] == pytest.approx(0.6)
    assert first["train_seconds"] == 10.0 and [p[0] for p in first["curve"]][-1] == 500


def test_an_experiment_that_wrote_no_table_adds_nothing(tmp_path):
    folder = tmp_path / "runs" / "x"
    folder.mkdir(parents=True)
    assert bench.collect(folder, tmp_path, "RepeatFirst", "gru", 500) == 0


def test_experiments_of_other_budgets_or_seeds_do_not_share_a_folder(tmp_path):
    folders = {
        bench.experiment(tmp_path, "RepeatFirst", "lstm", budget, seeds)
        for budget, seeds in [(1000, 3), (1500, 3), (1000, 1), (500, 3)]
    }
    assert len(folders) == 4


def test_thinning_keeps_the_last_point():
    steps = list(range(2 * bench.CURVE_POINTS + 1))
    kept = bench.thin(steps, [0.0] * len(steps), [1.0] * len(steps))
    assert kept[-1][0] == steps[-1] and len(kept) <= bench.CURVE_POINTS + 2


def test_the_table_gives_each_cell_its_seeds_and_the_paper_where_known():
    def line(env, cell, seed, mmer, budget=1000, seconds=60.0):
        return {"env": env, "cell": cell, "budget": budget, "seed": seed, "mmer": mmer,
                "train_seconds": seconds}  # fmt: skip

    results = [
        line("PositionOnlyCartPole", "lstm", 0, 0.9),
        line("PositionOnlyCartPole", "lstm", 1, 1.0, seconds=80.0),
        line("PositionOnlyCartPole", "ffm", 0, 0.5, seconds=30.0),
        line("PositionOnlyCartPole", "none", 0, 0.7, seconds=10.0),
        line("RepeatFirst", "lstm", 0, 0.25),
        line("RepeatFirst", "lstm", 1, -1.0, budget=2000),  # another budget: not in this table
        line("RepeatFirst", "gru", 1, -1.0, budget=2000),  # nor its column
        line("VelocityOnlyCartpole", "lstm", 0, 0.5),
    ]
    header, _, *rows = bench.table(results, 1000).splitlines()
    assert header.startswith("| env (Easy) | lstm: MMER") and "ffm: MMER" in header
    assert header.index("none: MMER") < header.index("ffm: MMER") and "gru" not in header
    assert header.endswith("training per run, median: lstm / none / ffm |")
    cells = {row.split("|")[1].strip(): [c.strip() for c in row.split("|")[1:-1]] for row in rows}
    cartpole = cells["PositionOnlyCartPole"]
    assert cartpole == ["PositionOnlyCartPole", "0.950 ± 0.071 (2)", "0.700 (1)", "0.500 (1)",
                        "0.722", "?", "1.000", "70 / 10 / 30 s"]  # fmt: skip
    repeat = cells["RepeatFirst"]
    assert repeat[:4] == ["RepeatFirst", "0.250 (1)", "", ""] and repeat[4:7] == ["?"] * 3
    assert repeat[-1] == "60 / - / - s"
    assert cells["VelocityOnlyCartpole"][4:7] == ["not in it"] * 3


def test_plotting_a_budget_without_results_draws_nothing(tmp_path, capsys):
    require("matplotlib")
    results = [{"env": "RepeatFirst", "cell": "lstm", "budget": 1000, "curve": [[1, 0.0, 0.5]]}]
    bench.plot(results, 2000, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists() and "no results at 2000" in capsys.readouterr().out


def test_address_joins_every_call_of_tune_py_new_or_resumed(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from benchmarks import jobs

    calls = []

    class Child:
        def wait(self):
            return 0

    def popen(command, **kwargs):
        calls.append(command)
        return Child()

    monkeypatch.setattr(jobs, "subprocess", SimpleNamespace(Popen=popen))
    monkeypatch.setattr(jobs, "resumable", lambda plan, ray: True)
    argv = ["--out", str(tmp_path), "--results", str(tmp_path), "--envs", "RepeatFirst"]
    argv += ["--cells", "lstm", "--max-concurrent", "1", "--address", "auto"]
    bench.main(argv)  # a new experiment
    folder = bench.experiment(tmp_path.resolve(), "RepeatFirst", "lstm", 1_000_000, 3)
    folder.mkdir()
    bench.main(argv)  # its resume
    bench.main(argv[:-2])  # without the flag: Ray starts in tune.py
    other = bench.experiment(tmp_path.resolve(), "RepeatPrevious", "lstm", 1_000_000, 3)
    bench.main([*argv[:5], "RepeatPrevious", "--cells", "lstm"])  # new, no limit, no cluster
    new, resumed, alone, unlimited = calls
    assert unlimited[-2:] == ["--run-dir", str(other)]
    assert "--max-concurrent" not in unlimited and "--address" not in unlimited
    assert new[new.index("--address") + 1] == "auto" and "--run-dir" in new
    assert resumed[resumed.index("--address") + 1] == "auto" and "--resume" in resumed
    assert "--address" not in alone
    # the limit is the experiment's: tune.py keeps it in the plan, and refuses it on a resume
    assert new[new.index("--max-concurrent") + 1] == "1" and "--max-concurrent" not in resumed


def test_the_paper_s_three_models_get_seeds_the_new_cells_new_cell_seeds(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "run_tune_experiment", lambda folder, args, *_: seen.append(args))
    argv = ["--out", str(tmp_path), "--results", str(tmp_path), "--envs", "RepeatFirst"]
    bench.main([*argv, "--seeds", "3", "--new-cell-seeds", "2"])
    seeds = {args[args.index("--rnn-type") + 1]: args[args.index("--seeds") + 1] for args in seen}
    assert seeds == {"lstm": "3", "gru": "3", "none": "3", "mingru": "2", "ffm": "2"}


def test_a_first_seed_runs_seeds_from_it_in_their_own_folder(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "run_tune_experiment", lambda *args: seen.append(args[:2]))
    argv = ["--out", str(tmp_path), "--results", str(tmp_path), "--envs", "RepeatFirst"]
    bench.main([*argv, "--cells", "gru", "--first-seed", "1", "--seeds", "2"])
    bench.main([*argv, "--cells", "gru"])
    bench.main([*argv, "--cells", "mingru", "--first-seed", "1", "--new-cell-seeds", "2"])
    (later, later_args), (first, first_args), (new_cell, _) = seen
    assert new_cell.name == "RepeatFirst__mingru__1000000steps__seeds1-2"
    assert later.name == "RepeatFirst__gru__1000000steps__seeds1-2"
    assert later_args[later_args.index("--seed") + 1] == "1"
    assert later_args[later_args.index("--seeds") + 1] == "2"
    assert first.name == "RepeatFirst__gru__1000000steps__3seeds" and "--seed" not in first_args


def test_a_negative_first_seed_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--table", "--results", str(tmp_path), "--first-seed", "-1"])
    assert stop.value.code == 2 and "--first-seed must be 0 or more" in capsys.readouterr().err


def test_layers_stack_the_cell_in_a_folder_and_results_of_its_own(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "run_tune_experiment", lambda *args: seen.append(args[:2]))
    monkeypatch.setattr(bench, "collect", lambda *args: seen.append(args[2:4]))
    argv = ["--out", str(tmp_path), "--results", str(tmp_path), "--envs", "RepeatFirst"]
    bench.main([*argv, "--cells", "mingru", "--layers", "2"])
    bench.main([*argv, "--cells", "mingru"])
    (stacked, stacked_args), stacked_label, (single, single_args), single_label = seen
    assert stacked.name == "RepeatFirst__mingru-2layers__1000000steps__1seeds"
    assert stacked_args[stacked_args.index("--rnn-type") + 1] == "mingru"
    assert stacked_args[stacked_args.index("--n-lstm-layers") + 1] == "2"
    assert stacked_label == ("RepeatFirst", "mingru-2layers")
    assert single.name == "RepeatFirst__mingru__1000000steps__1seeds"
    assert "--n-lstm-layers" not in single_args and single_label == ("RepeatFirst", "mingru")


def test_prev_action_names_the_wrapper_in_a_folder_and_results_of_its_own(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "run_tune_experiment", lambda *args: seen.append(args[:2]))
    monkeypatch.setattr(bench, "collect", lambda *args: seen.append(args[2:4]))
    argv = ["--out", str(tmp_path), "--results", str(tmp_path), "--envs", "Concentration"]
    bench.main([*argv, "--cells", "none", "--prev-action", "--seeds", "1"])
    bench.main([*argv, "--cells", "ffm", "--layers", "2", "--prev-action"])
    bench.main([*argv, "--cells", "none", "--seeds", "1"])
    (fed, fed_args), fed_label, (both, both_args), both_label, (plain, plain_args), _ = seen
    assert fed.name == "Concentration__none-prevaction__1000000steps__1seeds"
    assert fed_args[fed_args.index("--wrapper") + 1] == "envs.previous_action:PreviousAction"
    assert fed_args[fed_args.index("--rnn-type") + 1] == "none"
    assert fed_label == ("Concentration", "none-prevaction")
    assert both.name == "Concentration__ffm-2layers-prevaction__1000000steps__1seeds"
    assert both_args[both_args.index("--n-lstm-layers") + 1] == "2" and "--wrapper" in both_args
    assert both_label == ("Concentration", "ffm-2layers-prevaction")
    assert (
        plain.name == "Concentration__none__1000000steps__1seeds" and "--wrapper" not in plain_args
    )


def test_the_prev_action_wrapper_spec_names_a_wrapper_that_loads():
    from agent.environment.wrappers import load_callable
    from envs.previous_action import PreviousAction

    assert load_callable(bench.PREV_ACTION) is PreviousAction


def test_layers_for_no_memory_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--table", "--results", str(tmp_path), "--cells", "none", "--layers", "2"])
    assert stop.value.code == 2 and "`none` has none" in capsys.readouterr().err


def test_variants_get_their_own_table_beside_the_lstm_and_their_plain_cell():
    def line(env, cell, mmer):
        return {"env": env, "cell": cell, "budget": 1000, "seed": 0, "mmer": mmer,
                "train_seconds": 60.0}  # fmt: skip

    results = [
        line("RepeatFirst", "lstm", 1.0),
        line("RepeatFirst", "gru", 1.0),
        line("RepeatFirst", "mingru", -0.2),
        line("RepeatFirst", "mingru-2layers", 0.9),
        line("RepeatFirst", "ffm", 0.0),
        line("RepeatFirst", "ffm-2layers", 0.8),
        line("PositionOnlyCartPole", "lstm", 1.0),
        line("Autoencode", "mingru-2layers", 0.1),  # its only run: no row in the main table
        line("Concentration", "none", -0.04),
        line("Concentration", "lstm-prevaction", 0.2),
        line("Concentration", "none-prevaction", 0.1),
    ]
    main = bench.table(results, 1000)
    assert "2layers" not in main and "Autoencode" not in main
    assert bench.variant_table(results[:3], 1000) is None
    header, _, *rows = bench.variant_table(results, 1000).splitlines()
    assert "lstm: MMER" in header and "| gru: MMER" not in header
    order = ["| lstm: ", "| lstm-prevaction", "| none: ", "| none-prevaction", "| mingru: ",
             "| mingru-2layers", "| ffm: ", "| ffm-2layers"]  # fmt: skip
    assert [header.index(c) for c in order] == sorted(header.index(c) for c in order)
    assert [row.split("|")[1].strip() for row in rows] == [
        "Autoencode", "RepeatFirst", "Concentration"]  # fmt: skip
    assert "prevaction" not in main
    cells = [c.strip() for c in rows[1].split("|")[2:10]]
    assert cells == ["1.000 (1)", "", "", "", "-0.200 (1)", "0.900 (1)", "0.000 (1)", "0.800 (1)"]
    assert [c.strip() for c in rows[2].split("|")[2:6]] == [
        "",
        "0.200 (1)",
        "-0.040 (1)",
        "0.100 (1)",
    ]


@pytest.mark.parametrize(
    "flag", ["--budget", "--seeds", "--new-cell-seeds", "--max-concurrent", "--layers"]
)
def test_a_count_below_one_is_a_usage_error(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--table", "--results", str(tmp_path), flag, "0"])
    assert stop.value.code == 2 and "must be positive" in capsys.readouterr().err


def test_a_shared_file_is_updated_by_one_copy_at_a_time(tmp_path):
    """Two copies of the script share walls.json and results.jsonl: while one holds the lock,
    another waits for it."""
    import threading

    from benchmarks.jobs import locked

    path, entered = tmp_path / "results.jsonl", threading.Event()

    def other_copy():
        with locked(path):
            entered.set()

    with locked(path):
        thread = threading.Thread(target=other_copy)
        thread.start()
        assert not entered.wait(0.3)  # blocked while the lock is held
    assert entered.wait(10)
    thread.join()


def test_hyperparams_reach_tune_py_in_a_folder_and_results_of_their_own(tmp_path, monkeypatch):
    from agent.tune.cli import tune_parser

    seen = []
    monkeypatch.setattr(bench, "run_tune_experiment", lambda *args: seen.append(args[:2]))
    monkeypatch.setattr(bench, "collect", lambda *args: seen.append(args[2:4]))
    argv = ["--out", str(tmp_path), "--results", str(tmp_path), "--envs", "MultiarmedBandit"]
    changed = ["--hyperparams", "shared_lstm:True", "net_arch:32,16", "log_std_init:-1e-3"]
    changed += ["device:cuda:0", "ent_coef:3e-2", "clip_range_vf:0.2", "n_steps:8", "batch_size:64"]
    bench.main([*argv, "--cells", "lstm", "--prev-action", "--seeds", "1", *changed])
    bench.main([*argv, "--cells", "lstm", "--seeds", "1"])
    (folder, args), tag, (plain, plain_args), plain_tag = seen
    name = (  # PPOConfig's order, one spelling per value
        "lstm-prevaction-n_steps=8-batch_size=64-clip_range_vf=0.2-ent_coef=0.03"
        "-shared_lstm=true-net_arch=32,16-log_std_init=-0.001-device=cuda:0"
    )
    assert folder.name == f"MultiarmedBandit__{name}__1000000steps__1seeds"
    assert tag == ("MultiarmedBandit", name) and "--wrapper" in args
    assert plain.name == "MultiarmedBandit__lstm__1000000steps__1seeds"
    assert "--ent-coef=0.03" not in plain_args and plain_tag == ("MultiarmedBandit", "lstm")
    # tune.py takes every flag and reads the values named
    parsed = tune_parser().parse_args(args)
    assert (parsed.n_steps, parsed.batch_size, parsed.clip_range_vf) == (8, 64, 0.2)
    assert (parsed.ent_coef, parsed.shared_lstm, parsed.net_arch) == (0.03, True, [32, 16])
    assert (parsed.log_std_init, parsed.device, parsed.rnn_type) == (-0.001, "cuda:0", "lstm")


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["ent_coef"], "takes NAME:VALUE"),
        (["entropy:0.1"], "'entropy' is unknown"),
        (["rnn_type:gru"], "is set by --cells"),
        (["n_lstm_layers:2"], "is set by --cells"),
        (["seed:3"], "is set by --cells"),
        (["ent_coef:0.1", "ent_coef:0.2"], "is given twice"),
        (["ent_coef:much"], "invalid number value"),
        (["ent_coef:0.03,0.04"], "invalid number value"),  # one value, not two flags' worth
        (["net_arch:64,--rnn-type,gru"], "takes positive sizes"),  # no flag slipped in
        (["ent_coef:-1"], "ent_coef must be a number >= 0"),
        (["forget_bias_init:chrono-ish"], "forget_bias_init must be one of"),
        (["ent_coef:1e-2"], "ent_coef:0.01 is the default already"),
        (["n_steps:8"], "batch_size (256) is larger than a rollout"),  # checked together
        (["lstm_hidden_size:30"], "ffm needs lstm_hidden_size divisible by 4"),  # per cell
    ],
)
def test_a_malformed_hyperparameter_is_a_usage_error(pairs, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--table", "--results", str(tmp_path), "--hyperparams", *pairs])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_hyperparams_valid_for_every_cell_pass():
    params = bench.hyperparams(["lstm_hidden_size:32", "target_kl:0.05", "ent_coef:0.03"])
    for cell in bench.CELLS:
        bench.check_hyperparams(params, cell, 1)
    assert params == {"ent_coef": 0.03, "target_kl": 0.05, "lstm_hidden_size": 32}


def test_variants_are_drawn_in_their_cell_s_colour_each_with_its_own_line():
    labels = ["lstm", "lstm-prevaction", "none", "ffm", "ffm-2layers", "ffm-prevaction"]
    styles = bench.line_styles(labels)
    assert styles["lstm"] == ("C0", "-") and styles["none"][1] == "-"
    assert styles["lstm-prevaction"] == ("C0", "--")
    assert styles["ffm-2layers"][0] == styles["ffm-prevaction"][0] == styles["ffm"][0]
    assert len(set(styles.values())) == len(labels)  # no two labels drawn alike
