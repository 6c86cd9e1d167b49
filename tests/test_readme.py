"""CI does what the README tells a newcomer, in the README's order."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_commands() -> list[str]:
    """The commands of the README's "Set up" section, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def ci_lines() -> list[str]:
    return [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]


def test_the_readme_sets_up_in_three_commands():
    commands = setup_commands()
    assert len(commands) == 3
    assert commands[0].startswith("pip install torch") and "cpu" in commands[0]
    assert "python train.py" in commands[1] and "pytest" in commands[2]


def test_ci_runs_the_readme_commands_verbatim_and_in_order():
    _, install_and_train, dev_and_test = setup_commands()
    lines = ci_lines()
    # CI cannot reach PyTorch's CPU index, so it takes the README's fallback: a local CPU build.
    torch_line = next(i for i, line in enumerate(lines) if line.startswith("pip install"))
    assert "torch==" in lines[torch_line]
    train_line = next(i for i, line in enumerate(lines) if install_and_train in line)
    test_line = next(i for i, line in enumerate(lines) if line == dev_and_test)
    assert torch_line < train_line < test_line


def test_ci_runs_the_slow_tests_every_time():
    text = (ROOT / ".ci" / "run").read_text()
    assert "-m slow" in text
    slow_line = next(line for line in text.splitlines() if "-m slow" in line)
    assert not slow_line.startswith((" ", "\t")), "the slow tests must not sit under a condition"
