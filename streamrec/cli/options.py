"""Options several commands take, declared once: configuration, its shortcut flags, the event source,
logging and ``--json``.

A group of options is one decorator that also folds its values into one typed object handed to the
command (``settings: Settings``, ``source: SourceSpec``), so a command's signature lists only its own
options and the shared ones cannot drift apart between commands.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import click

from stream.config import Config, load_config, setting_paths
from stream.events import Event
from stream.sources import DATASETS, open_source
from stream.sources.exposure import ExposureConfig
from stream.sources.logfile import ColumnMap
from stream.sources.synthetic import SyntheticConfig

F = TypeVar("F", bound=Callable[..., Any])
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Shortcut:
    """A flag that stands for one config setting (``--data-dir`` for ``worker.data_dir``)."""

    flag: str
    setting: str
    type: type


SHORTCUTS = {
    s.flag.lstrip("-").replace("-", "_"): s
    for s in (
        Shortcut("--bootstrap-servers", "kafka.bootstrap_servers", str),
        Shortcut("--partitions", "kafka.partitions", int),
        Shortcut("--data-dir", "worker.data_dir", str),
        Shortcut("--metrics-port", "metrics.port", int),
        Shortcut("--registry-root", "registry.root", str),
        Shortcut("--port", "serving.port", int),
    )
}


class SettingOption(click.Option):
    """A flag that stands for one config setting; given, it beats ``--set``."""

    def __init__(self, *args: Any, setting: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setting = setting


@dataclass(frozen=True)
class Settings:
    """A command's configuration as given: the file, the ``--set`` overrides, and shortcut flags (which win)."""

    file: str | None = None
    overrides: tuple[str, ...] = ()
    flags: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Config:
        """Defaults < file < STREAMREC_* variables < --set < shortcut flags."""
        given = [f"{setting}={json.dumps(value)}" for setting, value in self.flags.items()]
        return load_config(self.file, [*self.overrides, *given])

    @classmethod
    def from_context(cls, ctx: click.Context) -> Settings:
        """The settings a parsed command line gives: --config, --set and the shortcut flags used."""
        flags = {
            p.setting: ctx.params[p.name]
            for p in ctx.command.params
            if isinstance(p, SettingOption) and p.name and ctx.params.get(p.name) is not None
        }
        return cls(ctx.params.get("config_file"), tuple(ctx.params.get("overrides", ())), flags)

    def given(self, setting: str) -> bool:
        """Whether a shortcut flag set ``setting`` (a command may default it otherwise)."""
        return setting in self.flags

    def argv(self) -> list[str]:
        """``--config`` and ``--set`` again, for a child process that must load the same configuration."""
        return (["--config", self.file] if self.file else []) + [a for s in self.overrides for a in ("--set", s)]


def _description(setting: str) -> str:
    return next(s.description for s in setting_paths(Config) if s.path == setting)


def _configure_logging(_ctx: click.Context, _param: click.Parameter, level: str) -> str:
    from streamrec.logs import setup

    setup(level)
    return level


log_level_option = click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="INFO",
    envvar="STREAMREC_LOG_LEVEL",
    show_default=True,
    expose_value=False,
    callback=_configure_logging,
    help="Least severe log records written to stderr (also STREAMREC_LOG_LEVEL).",
)


def json_option(help: str = "Print the result as one JSON object on one line.") -> Callable[[F], F]:
    """``--json``: the result as one JSON line on stdout, for scripts."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def config_options(*shortcuts: str, **helps: str) -> Callable[[F], F]:
    """--config, --set, --log-level and the named shortcut flags, handed to the command as ``settings``.

    A shortcut's help is its setting's description unless ``helps`` gives one (by parameter name)."""
    unknown = set(shortcuts) - set(SHORTCUTS)
    assert not unknown, f"no shortcut flag {unknown}"

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def with_settings(*args: Any, **kwargs: Any) -> Any:
            for name in (*shortcuts, "config_file", "overrides"):
                del kwargs[name]
            return command(*args, settings=Settings.from_context(click.get_current_context()), **kwargs)

        decorated: Any = with_settings
        for name in reversed(shortcuts):
            s = SHORTCUTS[name]
            text = helps.get(name) or f"{_description(s.setting)} Sets {s.setting}."
            decorated = click.option(s.flag, type=s.type, help=text, cls=SettingOption, setting=s.setting)(decorated)
        decorated = click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="NAME=VALUE",
            help="Override any setting, at any depth (repeatable), e.g. --set serving.blend.student=2.",
        )(decorated)
        decorated = click.option(
            "--config", "config_file", metavar="FILE", help="TOML config file (also STREAMREC_CONFIG)."
        )(decorated)
        return cast(F, log_level_option(decorated))

    return decorate


_COLUMNS: dict[str, tuple[str | None, str]] = {
    "user_col": ("user_id", "Column with the user id."),
    "item_col": ("item_id", "Column with the item id."),
    "time_col": ("ts", "Column with the event's time."),
    "type_col": (None, "Column with impression/click/conversion (default: every row is a click)."),
    "id_col": (None, "Column with a unique event id (default: a hash of the row)."),
    "category_col": (None, "Column with the item's category."),
    "tags_col": (None, "Column with the item's tags: a string split on --tags-sep (JSONL: also a list of strings)."),
    "title_col": (None, "Column with the item's title."),
    "position_col": (None, "Column with the slot the item was shown in (0 = top)."),
    "request_col": (
        None,
        "Column with a request id: impressions sharing one were shown together "
        "(default: a user's impressions at one timestamp).",
    ),
    "propensity_col": (
        None,
        "Column with the logging policy's probability of showing the item, in (0, 1], for counterfactual estimates.",
    ),
    "value_col": (None, "Column with a conversion's value (e.g. revenue), >= 0."),
}
_SOURCE_PARAMS = (*_COLUMNS, "dataset", "path", "time_unit", "tags_sep", "user_attr_cols", "seed", "sessions")


@dataclass(frozen=True)
class SourceSpec:
    """Which events a command reads: a data set, or a user's log file and how its columns map."""

    dataset: str
    path: str | None = None
    columns: ColumnMap | None = None
    seed: int = 42
    sessions: int = 30_000

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SourceSpec:
        """The source the parsed source options name (``click.Context.params`` of a command)."""
        columns = None
        if params["dataset"] == "file":
            attrs = tuple(c.strip() for c in params["user_attr_cols"].split(",") if c.strip())
            columns = ColumnMap(
                user=params["user_col"],
                item=params["item_col"],
                time=params["time_col"],
                type=params["type_col"],
                event_id=params["id_col"],
                time_unit=params["time_unit"],
                category=params["category_col"],
                tags=params["tags_col"],
                tags_sep=params["tags_sep"],
                title=params["title_col"],
                user_attrs=attrs,
                position=params["position_col"],
                request_id=params["request_col"],
                propensity=params["propensity_col"],
                value=params["value_col"],
            )
        return cls(params["dataset"], params["path"], columns, params["seed"], params["sessions"])

    def open(self) -> Iterator[Event]:
        """The events, in time order (raises SourceError or LogFormatError with a one-line fix)."""
        synthetic = SyntheticConfig(seed=self.seed, n_sessions=self.sessions) if self.dataset == "synthetic" else None
        exposure = ExposureConfig(seed=self.seed, n_sessions=self.sessions) if self.dataset == "exposure" else None
        return open_source(self.dataset, self.path, self.columns, synthetic, exposure)


def _source_flags(default: str) -> list[Callable[[F], F]]:
    flags = [
        click.option(
            "--dataset",
            type=click.Choice(DATASETS),
            default=default,
            show_default=True,
            help="Events to read (ml-1m: MovieLens-1M's development slice, a tenth of its users).",
        ),
        click.option("--path", help="With --dataset file: a CSV or JSONL click log."),
    ]
    for name, (value, text) in _COLUMNS.items():
        flags.append(
            click.option("--" + name.replace("_", "-"), default=value, show_default=value is not None, help=text)
        )
    return [
        *flags,
        click.option(
            "--time-unit", type=click.Choice(["s", "ms"]), default="ms", show_default=True, help="Unit of --time-col."
        ),
        click.option("--tags-sep", default="|", show_default=True, help="Separator between tags in --tags-col."),
        click.option(
            "--user-attr-cols",
            default="",
            help="Comma-separated columns, each one user attribute (key: the column's name, value: its text).",
        ),
        click.option("--seed", type=int, default=42, show_default=True, help="Seed of the generated data sets."),
        click.option(
            "--sessions",
            type=int,
            default=30_000,
            show_default=True,
            help="Generated sessions: synthetic ~11 events each, exposure (visits) ~12.",
        ),
    ]


def source_options(default: str = "synthetic") -> Callable[[F], F]:
    """--dataset, --path and the column-map flags, handed to the command as ``source: SourceSpec``."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def with_source(*args: Any, **kwargs: Any) -> Any:
            source = SourceSpec.from_params(kwargs)
            for name in _SOURCE_PARAMS:
                del kwargs[name]
            return command(*args, source=source, **kwargs)

        decorated: Any = with_source
        for flag in reversed(_source_flags(default)):
            decorated = flag(decorated)
        return cast(F, decorated)

    return decorate
