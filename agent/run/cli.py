"""Command-line parsing for `train.py` and `evaluate.py`: one flag per `PPOConfig` field, presets.

Every field of the config dataclass becomes a flag named after it (`n_steps` -> `--n-steps`), its
help text taken from the docstring written under the field. Values resolve in this order:
dataclass defaults < YAML preset (`--config`) < flags on the command line.

Why our own argparse code rather than a library such as tyro: tyro (1.0.17, tried here) builds
the same flags from the same field docstrings, but, as it comes, prints each error as a boxed
panel (`--n-steps lots` takes 9 lines), where the scripts promise one `error: ...` line, and it
would be a dependency for about 150 lines of code. The docstrings are read with `ast` from the
source (`field_docs`); a dataclass whose source cannot be read gets flags without help text.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import gc
import inspect
import itertools
import re
import sys
import textwrap
import types
import typing
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml

from agent.config import PPOConfig
from agent.environment.wrappers import WrapperSpec, wrapper_parts, wrapper_spec
from agent.run import zoo
from agent.run.evaluation import MAX_EVAL_ENVS

DEFAULT_ENV = "Memory/TMaze-v0"
"""The task `python train.py` trains when neither `--env` nor `--config` is given."""
DEFAULT_ENV_KWARGS: dict[str, Any] = {"length": 10}
"""A short T-maze gap: solved in minutes on a CPU."""
DEFAULT_TOTAL_TIMESTEPS = 200_000
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
"""The presets that `--config NAME` finds by name."""
DEFAULT_PRESET = CONFIGS / "tmaze-short.yaml"
"""Used for the defaults of `python train.py` when it exists."""

RUN_KEYS = ("env", "env_kwargs", "wrappers", "total_timesteps")
"""Keys a preset may hold besides the hyperparameters."""
SCHEDULE_DEFAULTS = {"checkpoint_freq": 50_000, "eval_freq": 20_000, "eval_episodes": 20}
"""`train.py --checkpoint-freq/--eval-freq/--eval-episodes` of a new run; a resumed run keeps
the values its checkpoint records."""


class UsageError(ValueError):
    """Bad command-line input; `train.py` and `evaluate.py` print it as `error: ...`, exit 2."""


def one_line(error: BaseException) -> str:
    """The first line of an error's message (its type's name when it has none), for the
    one-line `error: ...` that the scripts print instead of a traceback."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()  # no terminal escapes
    return text.splitlines()[0].strip() if text else type(error).__name__


def one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    """How the scripts show a warning: `warning: MESSAGE`, without the file and source line."""
    return f"warning: {message}\n"


def run_script(main: typing.Callable[[], int]) -> typing.NoReturn:
    """The `__main__` of the scripts: exit with `main()`'s code; a Ctrl-C that reaches here
    (outside training, which handles its own) exits 130 with one line. Warnings print as one
    line each.

    Before exiting, every live object is moved out of the garbage collector's reach
    (`gc.freeze`): the collections Python runs while it tears down its modules took 1.5-2 s
    of `tune.py`'s exit once Ray and torch were loaded (0.3 s of `train.py`'s), for memory the
    operating system frees anyway. Files and writers are closed by the scripts before this."""
    warnings.formatwarning = one_line_warning
    try:
        code = main()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = 130
    gc.freeze()
    sys.exit(code)


class _Unset:
    """Default of every generated flag, so that flags given on the command line can be told
    apart from flags left alone (`--target-kl none` is given, and its value is None)."""

    def __repr__(self) -> str:
        return "<unset>"


UNSET: Any = _Unset()


class HelpFormatter(argparse.HelpFormatter):
    """`--help` that fits a screen or two: the usage line says `[options]` instead of listing
    every flag again, a repeated value is `N ...`, and a flag's optional value is shown without
    brackets (the hyperparameters show their defaults there: `--shared-lstm false`)."""

    def __init__(self, prog: str, max_help_position: int = 26, **kwargs: Any) -> None:
        super().__init__(prog, max_help_position=max_help_position, **kwargs)

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: Any = None) -> None:
        if usage is None:
            positionals = [self._format_args(a, a.dest) for a in actions if not a.option_strings]
            usage = " ".join(["%(prog)s [options]", *positionals])
        super().add_usage(usage, actions, groups, prefix)

    def _format_args(self, action: argparse.Action, default_metavar: str) -> str:
        if isinstance(action.metavar, tuple):
            return super()._format_args(action, default_metavar)
        metavar = self._metavar_formatter(action, default_metavar)(1)[0]
        if action.nargs == argparse.ONE_OR_MORE:
            return f"{metavar} ..."
        if action.nargs == argparse.OPTIONAL and action.option_strings:
            return metavar
        return super()._format_args(action, default_metavar)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, `error: ...`, with exit code 2, that
    takes no abbreviated flags (`--n-env 4` is an error, not `--n-envs 4`), and whose help is
    compact (`HelpFormatter`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


# ------------------------------------------------------------------------- config flags ---


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass, read from its source code."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    class_def = ast.parse(source).body[0]
    docs: dict[str, str] = {}
    body = getattr(class_def, "body", [])
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs


def parse_bool(text: str) -> bool:
    """`true/false`, `yes/no`, `on/off`, `1/0` (any case)."""
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _optional(convert: typing.Callable[[str], Any]) -> typing.Callable[[str], Any]:
    """A converter that also accepts `none`/`null` for None."""

    def parse(text: str) -> Any:
        if text.strip().lower() in ("none", "null"):
            return None
        return convert(text)

    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _named(convert: Any) -> Any:
    """`int` and `float` under the names argparse prints: `invalid integer value: 'lots'`."""
    name = {int: "integer", float: "number"}.get(convert)
    if name is None:
        return convert

    def parse(text: str) -> Any:
        return convert(text)

    parse.__name__ = name
    return parse


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(T, True) for `T | None`, else (tp, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def flag_name(field_name: str) -> str:
    """`n_steps` -> `--n-steps`."""
    return "--" + field_name.replace("_", "-")


def _as_typed(value: Any) -> str:
    """A default as it is typed on the command line: `true`, `none`, `64 64`, `0.001`."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, list):
        return " ".join(map(str, value))
    return str(value)


def add_config_flags(parser: argparse.ArgumentParser, cls: type = PPOConfig) -> None:
    """Add one flag per dataclass field, typed from its annotation, documented by its docstring,
    its default shown where the value goes (`--gamma 0.99`).

    bool -> `--x` / `--no-x` / `--x true|false`; `T | None` also takes `none`; `list[T]` takes
    one or more values (`--net-arch 64 64`); everything else is converted with its type.
    """
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    group = parser.add_argument_group(
        "hyperparameters",
        "PPOConfig's fields (SB3's names) with their defaults, overriding the preset's. A "
        "boolean also takes --NAME alone (true) and --no-NAME.",
    )
    for f in dataclasses.fields(cls):
        tp, optional = _unwrap_optional(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        help_text = docs.get(f.name, "").replace("%", "%%")
        metavar = _as_typed(default)
        name = flag_name(f.name)
        if tp is bool:
            group.add_argument(
                name,
                dest=f.name,
                nargs="?",
                const=True,
                type=parse_bool,
                default=UNSET,
                metavar=metavar,
                help=help_text,
            )
            group.add_argument(
                "--no-" + name[2:],
                dest=f.name,
                action="store_const",
                const=False,
                default=UNSET,
                help=argparse.SUPPRESS,
            )
        elif typing.get_origin(tp) is list:
            (item,) = typing.get_args(tp)
            group.add_argument(
                name,
                dest=f.name,
                nargs="+",
                type=_named(item),
                default=UNSET,
                metavar=metavar,
                help=help_text,
            )
        else:
            convert = _optional(_named(tp)) if optional else _named(tp)
            group.add_argument(
                name, dest=f.name, type=convert, default=UNSET, metavar=metavar, help=help_text
            )


def refuse_settings_on_resume(
    args: argparse.Namespace, parser: argparse.ArgumentParser, allowed: set[str], kept_in: str
) -> None:
    """Raise `UsageError` naming every flag given besides the argument names in `allowed`:
    a resumed run or experiment keeps the settings it recorded in `kept_in`."""
    defaults = vars(parser.parse_args([]))
    given = [
        "--wrapper" if key == "wrappers" else flag_name(key)
        for key, value in vars(args).items()
        if key not in allowed and value != defaults.get(key)
    ]
    if given:
        can = ", ".join(flag_name(key) for key in sorted(allowed - {"resume"}))
        raise UsageError(
            f"{', '.join(given)} cannot be changed on --resume: the settings are in {kept_in} "
            f"(only {can} can be given)"
        )


def config_overrides(args: argparse.Namespace, cls: type = PPOConfig) -> dict[str, Any]:
    """The dataclass fields given on the command line, by field name."""
    return {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(cls)
        if getattr(args, f.name, UNSET) is not UNSET
    }


# --------------------------------------------------------------------------- env inputs ---


def parse_wrappers(items: list[list[str]], flag: str = "--wrapper") -> list[WrapperSpec]:
    """`[["module:Callable", "K=V", ...], ...]`, as `--wrapper` collects them, -> wrapper specs."""
    return [
        wrapper_spec(target, parse_env_kwargs(kwargs, f"{flag} {target}"))
        for target, *kwargs in items
    ]


def parse_env_kwargs(items: list[str] | None, flag: str = "--env-kwargs") -> dict[str, Any]:
    """`["length=100", "noise=0.1", "name=abc"]` -> {"length": 100, "noise": 0.1, "name": "abc"}.

    Values are Python literals (`ast.literal_eval`), falling back to the raw string.
    """
    kwargs: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"{flag} expects key=value pairs, got {item!r}")
        try:
            kwargs[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            kwargs[key] = text
    return kwargs


def preset_path(name: str | Path) -> Path:
    """`--config` as given: a YAML file, else the name of a preset in `configs/`
    (`tmaze-short`). Raises `UsageError` listing the presets when neither exists."""
    path = Path(name)
    if path.is_file():
        return path
    named = CONFIGS / f"{path.name.removesuffix('.yaml')}.yaml"
    if path.parent == Path() and named.is_file():
        return named
    if path.parent != Path():
        raise UsageError(f"cannot read preset {path}: no such file")
    presets = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    close = difflib.get_close_matches(path.stem, presets, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(
        f"no preset {str(name)!r}: not a file, nor a name in configs/ ({hint}presets: "
        f"{', '.join(presets)})"
    )


def read_preset(path: str | Path, env: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Read a YAML preset: hyperparameters plus optional `env`, `env_kwargs`, `wrappers`,
    `total_timesteps`. An rl-baselines3-zoo file (env id -> settings) is read too, its names
    translated (`agent.run.zoo`; `env` picks its entry, `zoo.select_env`). Returns the preset
    and notes on what was read approximately. Raises `UsageError` when it is missing, empty,
    malformed or a search space, `ConfigError` for zoo settings that do not apply."""
    path = preset_path(path)
    data = read_yaml(path, "preset")
    if data is None or data == {}:  # a typo in --config should not train the defaults
        raise UsageError(f"preset {path} is empty")
    if not isinstance(data, dict):
        raise UsageError(
            f"preset {path} must be a mapping of key: value, got {type(data).__name__}"
        )
    sampled = _sampled_key(data)
    if sampled is not None:
        raise UsageError(
            f"{path} is a search space ({sampled}: {data[sampled]}), not a preset: "
            f"use tune.py --search {path}"
        )
    known = {f.name for f in dataclasses.fields(PPOConfig)} | set(RUN_KEYS)
    notes: list[str] = []
    entry = zoo.is_zoo_file(data, known)
    if entry:
        data, notes = zoo.select_env(data, str(path), env)
    data, translated = zoo.from_zoo(data, entry=entry)
    notes += translated
    if "env_kwargs" in data and not isinstance(data["env_kwargs"] or {}, dict):
        raise UsageError(f"preset {path}: env_kwargs must be a mapping")
    if "wrappers" in data:
        if not isinstance(data["wrappers"] or [], list):
            raise UsageError(f"preset {path}: wrappers must be a list of 'module:Callable'")
        for spec in data["wrappers"] or []:
            wrapper_parts(spec)  # EnvError for a malformed entry
    return data, notes


SEARCH_DISTRIBUTIONS = ("uniform", "loguniform", "quniform", "randint", "choice")
"""The distributions of a search space (`agent.tune.search_space.ARITY`, which this package
cannot import), to tell one given to `--config`."""


def _sampled_key(data: dict[str, Any]) -> str | None:
    """The first hyperparameter that a search space samples (`learning_rate: {loguniform:
    [1e-5, 1e-2]}`), or None for a preset."""
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    for key, value in data.items():
        if isinstance(value, dict) and len(value) == 1 and key in fields:
            (kind,) = value
            if kind in SEARCH_DISTRIBUTIONS:
                return key
    return None


def load_preset(path: str | Path) -> dict[str, Any]:
    """`read_preset` without its notes."""
    return read_preset(path)[0]


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, with numbers as people write them: PyYAML follows YAML 1.1, where
    a float needs a dot and a signed exponent, so `1e-5`, `3e-4` and `1E5` would be strings.
    They are floats here, as in YAML 1.2 (and JSON, and Python); a quoted `'1e-5'` stays a
    string, and so does `lin_1e-3`."""


YamlLoader.add_implicit_resolver(  # a copy of SafeLoader's resolvers: SafeLoader is unchanged
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> Any:
    """YAML text as Python data, read by `YamlLoader`: the project's one way to read YAML."""
    return yaml.load(text, Loader=YamlLoader)  # a SafeLoader: builds plain data only


def read_yaml(path: Path, what: str) -> Any:
    """The content of the YAML file `path` (a `what`: "preset", "search space"), read by
    `load_yaml`. Raises `UsageError` in one line when it cannot be read or parsed, naming the
    line and column."""
    try:
        return load_yaml(path.read_text())
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        raise UsageError(f"{what} {path} is not valid YAML: {_yaml_problem(e)}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    """`line 3, column 7: mapping values are not allowed here` (1-based, as editors count)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).strip().splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def build_config(preset: dict[str, Any], overrides: dict[str, Any]) -> PPOConfig:
    """Defaults < preset hyperparameters < command-line overrides; validated.

    Raises `ConfigError` naming an unknown or invalid field.
    """
    values = {k: v for k, v in preset.items() if k not in RUN_KEYS}
    return PPOConfig.from_dict({**values, **overrides}).validate()


@dataclasses.dataclass
class Settings:
    """Everything a new run needs, resolved from defaults, preset and flags."""

    env_id: str
    env_kwargs: dict[str, Any]
    wrappers: list[WrapperSpec]
    total_timesteps: int
    config: PPOConfig
    notes: list[str] = dataclasses.field(default_factory=list)
    """What a preset in rl-zoo's format gave that is read approximately (printed as notes)."""


def resolve_settings(args: argparse.Namespace) -> Settings:
    """Defaults < preset < flags, for the env as well as the hyperparameters.

    The preset is `--config`, else (when `--env` is not given either) `configs/tmaze-short.yaml`,
    else the built-in default task. A preset's env kwargs and wrappers belong to its env: they
    are dropped when `--env` names another one. `--env-kwargs` update the preset's kwargs.
    Raises `UsageError` or `ConfigError`.
    """
    notes: list[str] = []
    if args.config is not None:
        preset, notes = read_preset(args.config, args.env)
    elif args.env is not None:
        preset = {}
    elif DEFAULT_PRESET.is_file():
        preset = load_preset(DEFAULT_PRESET)
    else:
        preset = {"env": DEFAULT_ENV, "env_kwargs": DEFAULT_ENV_KWARGS}
    env_id = args.env or preset.get("env") or DEFAULT_ENV
    same_env = args.env is None or args.env == preset.get("env")
    env_kwargs = dict(preset.get("env_kwargs") or {}) if same_env else {}
    env_kwargs.update(parse_env_kwargs(args.env_kwargs))
    if args.wrappers is not None:
        wrappers = parse_wrappers(args.wrappers)
    else:
        wrappers = list(preset.get("wrappers") or []) if same_env else []
    total = args.total_timesteps or preset.get("total_timesteps") or DEFAULT_TOTAL_TIMESTEPS
    if isinstance(total, float) and total.is_integer():  # YAML: `total_timesteps: 1.0e6`
        total = int(total)
    if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
        raise UsageError(f"total_timesteps must be a positive integer, got {total!r}")
    config = build_config(preset, config_overrides(args))
    return Settings(env_id, env_kwargs, wrappers, total, config, notes)


def resolve_schedule(args: argparse.Namespace, recorded: dict[str, Any]) -> dict[str, int]:
    """checkpoint_freq, eval_freq, eval_episodes: flags < what a resumed run recorded <
    defaults. Raises `UsageError` for non-positive values (eval_freq may be 0: off)."""
    schedule = {}
    for key, default in SCHEDULE_DEFAULTS.items():
        value = getattr(args, key, None)
        if value is None:
            value = recorded.get(key, default)
        if not isinstance(value, int) or value < 0 or (value == 0 and key != "eval_freq"):
            flag = "--" + key.replace("_", "-")
            raise UsageError(f"{flag} must be a positive integer, got {value!r}")
        schedule[key] = value
    return schedule


# ------------------------------------------------------------------------------- run dir ---


def sanitize(text: str) -> str:
    """An env id as a folder name: `Memory/TMaze-v0` -> `Memory-TMaze-v0`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "env"


def default_run_dir(env_id: str, seed: int, now: datetime | None = None) -> Path:
    """`runs/<env>__<seed>__<YYYYmmdd-HHMMSS>`."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{sanitize(env_id)}__{seed}__{stamp}"


# ------------------------------------------------------------------------------- parsers ---


def train_parser(resumable: bool = True) -> Parser:
    """The parser of `train.py`: run options, then one flag per `PPOConfig` field. With
    `resumable` False (a parent parser whose `--resume` takes no settings), the help says
    nothing of what `--resume` does with the run flags."""
    on_resume = " (on --resume: the run's)" if resumable else ""
    parser = Parser(
        prog="train.py",
        description=f"Train recurrent PPO; with no arguments, on {DEFAULT_ENV} with a short gap.",
    )
    run = parser  # under "options", beside --help: a heading fewer in a long help
    run.add_argument(
        "--env",
        default=None,
        metavar="ID",
        help="Gymnasium id; `module:Id` imports the module first",
    )
    run.add_argument(
        "--env-kwargs",
        nargs="+",
        default=None,
        metavar="K=V",
        help="keyword arguments of gym.make (Python literals)",
    )
    run.add_argument(
        "--wrapper",
        action="append",
        nargs="+",
        default=None,
        dest="wrappers",
        metavar=("MODULE:CALLABLE", "K=V"),
        help="wrap each env copy (repeatable, innermost first)",
    )
    run.add_argument(
        "--total-timesteps",
        type=int,
        metavar="N",
        default=None,
        help="environment steps to train" + (" (on --resume: the new total)" if resumable else ""),
    )
    run.add_argument(
        "--config",
        default=None,
        metavar="FILE|NAME",
        help="YAML preset (also rl-zoo's), or a name in configs/",
    )
    run.add_argument(
        "--run-dir", default=None, metavar="DIR", help="output folder (runs/<env>__<seed>__<time>)"
    )
    run.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue a run (or a .pt checkpoint) in its folder",
    )
    run.add_argument(
        "--checkpoint-freq",
        type=int,
        metavar=str(SCHEDULE_DEFAULTS["checkpoint_freq"]),
        default=None,
        help=f"steps between checkpoints{on_resume}",
    )
    run.add_argument(
        "--eval-freq",
        type=int,
        metavar=str(SCHEDULE_DEFAULTS["eval_freq"]),
        default=None,
        help=f"steps between evaluations, 0: none{on_resume}",
    )
    run.add_argument(
        "--eval-episodes",
        type=int,
        metavar=str(SCHEDULE_DEFAULTS["eval_episodes"]),
        default=None,
        help=f"episodes per evaluation{on_resume}",
    )
    run.add_argument(
        "--log-memory",
        action="store_true",
        help="log the core's gates and memory at each evaluation",
    )
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar (default: when stderr is a terminal)",
    )
    add_config_flags(parser)
    return parser


def evaluate_parser() -> Parser:
    """The parser of `evaluate.py`."""
    parser = Parser(
        prog="evaluate.py",
        description="Evaluate a trained model on the env its checkpoint records.",
    )
    parser.add_argument(
        "path",
        metavar="RUN_DIR|CHECKPOINT",
        help="a run folder (uses model.pt, else checkpoints/last.pt) or a .pt file",
    )
    parser.add_argument(
        "--episodes", type=int, metavar="N", default=100, help="episodes to run (default: 100)"
    )
    parser.add_argument(
        "--seed", type=int, metavar="N", default=0, help="seed of the evaluation envs (default: 0)"
    )
    parser.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of taking the mode"
    )
    parser.add_argument(
        "--env-kwargs",
        nargs="+",
        default=None,
        metavar="KEY=VALUE",
        help="override the recorded env kwargs (e.g. a longer gap)",
    )
    parser.add_argument(
        "--n-envs",
        type=int,
        metavar="N",
        default=MAX_EVAL_ENVS,
        help=f"env copies stepped together (default: one per episode, at most {MAX_EVAL_ENVS})",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON")
    parser.add_argument(
        "--video", default=None, metavar="DIR", help="record episodes as mp4 (needs moviepy)"
    )
    parser.add_argument(
        "--plot-memory",
        default=None,
        metavar="FILE.png",
        help="draw the actor's recurrent gates and memory over episodes (needs matplotlib)",
    )
    parser.add_argument(
        "--plot-episodes",
        type=int,
        default=2,
        metavar="N",
        help="episodes drawn by --plot-memory (default: 2)",
    )
    return parser
