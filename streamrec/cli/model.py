"""The model registry by hand: list, promote and roll back, announced when Kafka is configured.

Exit codes: 0 done (or already current), 1 refused or failed (gate, corrupt artifact, no such version,
announcement), 2 bad arguments or config.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import msgspec

from stream.config import Config
from streamrec.cli.options import Settings, config_options, json_option
from streamrec.cli.plumbing import Group

REGISTRY = {"registry_root": "The registry directory. Sets registry.root."}
ANNOUNCE = {"bootstrap_servers": "Announce the change on kafka.model_updates_topic via this cluster."}


@click.group(cls=Group)
def model() -> None:
    """List, promote and roll back models in the registry."""


@model.command(name="list")
@config_options("registry_root", **REGISTRY)
@json_option("Print one JSON value.")
def list_(settings: Settings, as_json: bool) -> int:
    """Every registered version; * marks the current one."""
    from offline.registry import Registry

    cfg = settings.load()
    registry = Registry(Path(cfg.registry.root), keep=cfg.registry.keep)
    versions = registry.list()
    if as_json:
        print(json.dumps(msgspec.to_builtins(versions)))
        return 0
    if not versions:
        print(f"no models registered in {registry.root}")
    for v in versions:
        metrics = " ".join(f"{name}={value:.4f}" for name, value in sorted(v.validation.items()))
        print(f"{'*' if v.is_current else ' '} {v.version:6d}  {v.created_at or '-':24}  {v.problem or metrics or '-'}")
    return 0


@model.command()
@click.argument("version", type=int, metavar="VERSION")
@click.option("--force", is_flag=True, help="Skip the quality gate (never the verification).")
@config_options("bootstrap_servers", "registry_root", **ANNOUNCE, **REGISTRY)
@json_option("Print one JSON value.")
def promote(settings: Settings, version: int, force: bool, as_json: bool) -> int:
    """Make VERSION current if it verifies and passes the quality gate."""
    from offline.registry import QualityGate

    def change(registry: Any, cfg: Config) -> Any:
        return registry.promote(
            version, QualityGate(cfg.registry.gate_metric, cfg.registry.gate_tolerance), force=force
        )

    return _change(settings, "promote", change, as_json)


@model.command()
@config_options("bootstrap_servers", "registry_root", **ANNOUNCE, **REGISTRY)
@json_option("Print one JSON value.")
def rollback(settings: Settings, as_json: bool) -> int:
    """Make the previously promoted version current again."""
    return _change(settings, "rollback", lambda registry, _cfg: registry.rollback(), as_json)


def _fail(action: str, message: str) -> int:
    print(f"streamrec model {action}: {message}", file=sys.stderr)
    return 1


def _change(settings: Settings, action: str, change: Any, as_json: bool) -> int:
    """Apply ``change`` to the registry, then announce the version it made current."""
    from offline.announce import AnnounceError
    from offline.registry import Registry, RegistryError
    from stream.model_artifact import ArtifactError
    from streamrec.cli.plumbing import external_kafka
    from streamrec.cli.train import announce

    cfg = settings.load()
    registry = Registry(Path(cfg.registry.root), keep=cfg.registry.keep)
    try:
        if cfg.kafka.bootstrap_servers:  # reach the broker first: an unreachable one refuses the whole command
            cfg = external_kafka(cfg, f"model {action}") or cfg
        result = change(registry, cfg)
    except (ArtifactError, RegistryError) as exc:
        return _fail(action, str(exc))
    outcome = msgspec.to_builtins(result)
    if not result.promoted and result.version != result.previous:  # refused by the gate; nothing changed
        if as_json:
            print(json.dumps({**outcome, "announced_on": None}))
        return _fail(action, result.reason)
    announced = None  # an already current version is announced again: the way to retry an announcement
    if cfg.kafka.bootstrap_servers:
        try:
            announce(cfg, registry.root, result.version)
        except AnnounceError as exc:
            return _fail(action, f"version {result.version} is current but {exc}; run the command again to re-announce")
        announced = cfg.kafka.model_updates_topic
    if as_json:
        print(json.dumps({**outcome, "announced_on": announced}))
        return 0
    print(
        f"version {result.version} is current (was {result.previous or 'none'}): {result.reason}"
        if result.promoted
        else result.reason
    )
    print(
        f"announced on topic {announced}"
        if announced
        else "no announcement made: no Kafka configured (--bootstrap-servers or kafka.bootstrap_servers)"
    )
    return 0
