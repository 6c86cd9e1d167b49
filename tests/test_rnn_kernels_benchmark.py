"""benchmarks/rnn_kernels.py: a row per core and the LSTM with oneDNN off, times against the LSTM's."""

from __future__ import annotations

import re

import pytest

from benchmarks import rnn_kernels

TINY = ["--steps", "4", "--hidden", "8", "--input", "4", "--repeats", "1"]


def test_every_core_is_timed_beside_the_lstm(capsys):
    assert rnn_kernels.main(TINY) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows = {m[1]: (float(m[2]), float(m[3])) for m in re.finditer(
        r"^  (\S.*?) +(\d+\.\d\d) ms   (\d+\.\d\d)x the LSTM's time$", out, re.M)}  # fmt: skip
    assert list(rows) == ["lstm", rnn_kernels.NO_ONEDNN, "gru", "peephole", "mingru", "ffm"], out
    assert rows["lstm"][1] == 1.0
    assert all(ms > 0 for ms, _ in rows.values())


def test_without_the_lstm_there_is_no_ratio(capsys):
    assert rnn_kernels.main([*TINY, "--cells", "gru", "mingru"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["gru", "mingru"]
    assert not any("LSTM" in line for line in lines)


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--cells", "ffm", "--hidden", "6"]])
def test_bad_sizes_are_one_line_exit_2(argv, capsys):
    assert rnn_kernels.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1, err


def test_the_second_lstm_runs_with_onednn_off_and_only_it(monkeypatch, capsys):
    import torch

    seen = []

    def record(core, x, state, repeats):
        seen.append((core.rnn_type, torch.backends.mkldnn.enabled))
        return 0.001

    monkeypatch.setattr(rnn_kernels, "time_core", record)
    assert rnn_kernels.main([*TINY, "--cells", "gru", "lstm"]) == 0
    assert seen == [("gru", True), ("lstm", True), ("lstm", False)]
    assert torch.backends.mkldnn.enabled


def test_a_cell_named_twice_is_timed_once(monkeypatch, capsys):
    timed = []
    monkeypatch.setattr(rnn_kernels, "time_core", lambda core, *_: timed.append(core) or 0.001)
    assert rnn_kernels.main([*TINY, "--cells", "lstm", "gru", "lstm"]) == 0
    assert [core.rnn_type for core in timed] == ["lstm", "lstm", "gru"]
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split("  ")[1].strip() for line in lines] == ["lstm", rnn_kernels.NO_ONEDNN, "gru"]


def test_without_onednn_there_is_no_row_without_it(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert rnn_kernels.main([*TINY, "--cells", "lstm"]) == 0
    out = capsys.readouterr().out
    assert "no oneDNN" in out and rnn_kernels.NO_ONEDNN not in out, out
