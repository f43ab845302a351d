"""One typed configuration object, built from defaults < TOML file < ``STREAMREC_*`` env < flags.

Every process receives a :class:`Config` instance; nothing reads the environment elsewhere.
Env names are ``STREAMREC_<SECTION>__<FIELD>`` (double underscore between section and field),
e.g. ``STREAMREC_KAFKA__BOOTSTRAP_SERVERS``; ``STREAMREC_CONFIG`` names the TOML file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

Positive = Annotated[int, msgspec.Meta(gt=0)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]

ENV_PREFIX = "STREAMREC_"


class ConfigError(ValueError):
    """A one-line, user-facing message that names the fix."""


class KafkaConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # Empty means "start the embedded Tansu broker" where a command can do so.
    bootstrap_servers: str = ""
    events_topic: str = "events"
    recommendations_topic: str = "recommendations"
    signals_topic: str = "streamrec-signals"
    # Announces every model promotion (one JSON message per promotion; see offline/registry).
    model_updates_topic: str = "model-updates"
    partitions: Positive = 4
    group_id: str = "streamrec-workers"
    # Passed verbatim to every confluent-kafka client: SASL/TLS settings live here,
    # e.g. {"security.protocol" = "SASL_SSL", "sasl.mechanism" = "PLAIN", ...}.
    client_overrides: dict[str, str] = {}

    def __post_init__(self) -> None:
        # The worker hands out partitions with incremental_assign(), which an eager protocol refuses
        # at the first rebalance ("must be made using assign()"): refuse the setting up front.
        strategy = self.client_overrides.get("partition.assignment.strategy", "cooperative-sticky")
        if strategy != "cooperative-sticky":
            raise ValueError(
                f"partition.assignment.strategy={strategy!r} is not supported: workers rebalance "
                "incrementally; drop it from kafka.client_overrides"
            )

    @property
    def dlq_topic(self) -> str:
        return f"{self.events_topic}.dlq"


class EventLimits(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    max_bytes: Positive = 8192
    # Events older than this relative to the partition's newest timestamp are dead-lettered.
    allowed_lateness_ms: NonNegative = 24 * 3600 * 1000


class StateConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    recent_items: Positive = 40
    max_seen_per_user: Positive = 2000
    half_lives_s: list[PositiveFloat] = msgspec.field(default_factory=lambda: [3600.0, 86400.0, 7 * 86400.0])
    covis_window: Positive = 40
    covis_neighbours: Positive = 200
    dedup_window: Positive = 100_000


class LearnerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    seed: int = 7
    mf_factors: Positive = 16
    mf_learning_rate: PositiveFloat = 0.2
    mf_regularisation: Fraction = 0.01
    mf_negatives: NonNegative = 4
    click_learning_rate: PositiveFloat = 0.05
    click_l2: Fraction = 0.0
    # Non-clicked impressions kept for the click model, weighted by 1/rate (negative downsampling).
    click_negative_rate: Fraction = 0.1
    click_sampled_negatives: NonNegative = 1
    candidates_per_source: Positive = 50
    drift_threshold: PositiveFloat = 20.0
    # Step size of the serving blend's online weights (stream/learners/blend.py); 0 keeps the
    # configured serving.blend fixed. 0.003, 0.01 and 0.03 gave recall@10 within 0.001 of each other
    # in an offline sweep over the MovieLens-100K replay's candidates.
    blend_learning_rate: NonNegativeFloat = 0.01
    # Share of clicks the blend learns from (by a hash of the event id). Each costs the worker one more
    # scoring of the user's candidates: learning from every click doubled the demo's freshness p50/p99
    # (104/1,036 ms -> 243/2,136 ms with the trainer sharing two cores).
    blend_sample_rate: Fraction = 0.25


class WorkerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    batch_size: Positive = 5000
    # consume() waits this long to fill a batch: it bounds how long an event can sit before it is
    # applied (and its recommendation published). 0.2 s measured 130 ms median staleness at 1,000/s.
    poll_timeout_s: PositiveFloat = 0.02
    snapshot_every_events: Positive = 50_000
    snapshot_every_s: PositiveFloat = 10.0
    data_dir: str = "./streamrec-data"
    training_log_retention_s: PositiveFloat = 7 * 86400.0
    # Score the ranking learners (full-catalogue, O(items) per click) on every n-th click; the
    # pointwise click model is scored on every example it learns. `eval` scores every click.
    prequential_every: Positive = 20


class RegistryConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    root: str = "./streamrec-models"
    # Versions kept on disk besides the current and the previous promoted one.
    keep: Positive = 5
    # Promotion gate: a candidate may not be worse than the current model's validation
    # ``gate_metric`` (higher is better) by more than this absolute amount.
    gate_metric: str = "ndcg@10"
    gate_tolerance: Fraction = 0.005


class TrainConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    seed: int = 7
    # Temporal split of the log: train on the earliest share, validate and test on what follows.
    validation_share: Fraction = 0.1
    test_share: Fraction = 0.1
    # Negatives per positive where the log has no impressions (uniform over unseen items).
    sampled_negatives: Positive = 4
    recent_items: Positive = 20
    epochs: Positive = 8
    batch_size: Positive = 1024
    learning_rate: PositiveFloat = 3e-3
    weight_decay: Fraction = 1e-4
    patience: Positive = 2
    curriculum: bool = True
    # Start each version's teacher from the previous one (kept under registry.root/teacher/).
    warm_start: bool = True
    # Weight of the teacher's group softmax (a click against its group) beside its pointwise losses;
    # 1.0 was chosen on validation (README, "What 2,000 clicks can tell apart"); 0 switches it off.
    teacher_listwise: NonNegativeFloat = 1.0
    # Clicks ranked against the full catalogue (deterministic samples in time order; 0 = all):
    # the test window's for the report (all: with 2,000 the student's share of the teacher's NDCG
    # had a +-6-point interval), the validation window's each epoch to select the student.
    test_clicks: NonNegative = 0
    validation_clicks: NonNegative = 2000
    threads: Positive = 2
    # The periodic trainer (`streamrec train` without --once) retrains when any of these fires:
    # this many newly logged events (0: never), this much time (0: never), a drift signal.
    every_events: NonNegative = 100_000
    every_s: NonNegative = 3600
    on_drift: bool = True
    poll_s: PositiveFloat = 5.0


class MetricsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    # 0 disables the endpoint.
    port: Port = 9464


class BlendWeights(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Starting weights of each signal's standardised score (z-score over one request's candidates)
    in the final ranking; the worker then learns them from the clicks, and a partition restored from
    a snapshot goes on from its learned weights (learners.blend_learning_rate 0: these weights, as
    set, always). The student's weight is dropped when no model is loaded (the fallback).

    Equal by default, no preference: the learned weights do not depend on where they start
    (README, "The serving path in the MovieLens-100K replay")."""

    student: NonNegativeFloat = 1.0
    item_knn: NonNegativeFloat = 1.0
    isgd_mf: NonNegativeFloat = 1.0
    popularity: NonNegativeFloat = 1.0


class ServingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # The HTTP API's address: loopback unless an operator opens it on purpose.
    host: str = "127.0.0.1"
    # The HTTP API's port; 0 disables the API.
    port: Port = 8080
    # Bearer token every /v1/ request must carry (Authorization: Bearer ...); empty: none. Give it
    # through the environment (STREAMREC_SERVING__API_TOKEN), not a file in version control.
    api_token: str = ""
    # Items per published recommendation and the default of ?k=; requests may ask up to max_k.
    k: Positive = 10
    max_k: Annotated[int, msgspec.Meta(gt=0, le=1000)] = 100
    # Candidates per source before ranking (co-visitation, online MF, trending, content).
    covis_candidates: NonNegative = 100
    mf_candidates: NonNegative = 100
    trending_candidates: NonNegative = 50
    content_candidates: NonNegative = 50
    # Item-side candidate lists (trending, per-category) are rebuilt at most this often.
    item_lists_refresh_s: PositiveFloat = 1.0
    # External item ids never recommended (e.g. withdrawn items), besides each user's seen items.
    exclude_items: list[str] = []
    # Never recommend an item the user clicked before (films, news). Off for domains where people
    # consume again (music, groceries): candidates, every learner's recommend() and the prequential
    # figures then all keep seen items, and a re-click counts as rankable.
    exclude_seen: bool = True
    # Event types that make the owning worker recompute and publish the user's top-k.
    publish_on: list[Literal["impression", "click", "conversion"]] = msgspec.field(
        default_factory=lambda: ["click", "conversion"]
    )
    # onnxruntime intra-op threads per scoring call; one keeps a request on one core.
    threads: Positive = 1
    # Registry re-read interval: a safety net for a missed model-updates message (0: never).
    registry_poll_s: NonNegativeFloat = 30.0
    blend: BlendWeights = msgspec.field(default_factory=BlendWeights)


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kafka: KafkaConfig = msgspec.field(default_factory=KafkaConfig)
    events: EventLimits = msgspec.field(default_factory=EventLimits)
    state: StateConfig = msgspec.field(default_factory=StateConfig)
    learners: LearnerConfig = msgspec.field(default_factory=LearnerConfig)
    worker: WorkerConfig = msgspec.field(default_factory=WorkerConfig)
    registry: RegistryConfig = msgspec.field(default_factory=RegistryConfig)
    train: TrainConfig = msgspec.field(default_factory=TrainConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    serving: ServingConfig = msgspec.field(default_factory=ServingConfig)


def _set_path(tree: dict[str, Any], dotted: str, value: Any, origin: str) -> None:
    parts = dotted.split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{origin}: {dotted!r} is not SECTION.FIELD (e.g. worker.batch_size)")
    section, field = parts
    if section not in Config.__struct_fields__:
        known = ", ".join(Config.__struct_fields__)
        raise ConfigError(f"{origin}: unknown section {section!r}; use one of {known}")
    tree.setdefault(section, {})[field] = value


def _parse_scalar(raw: str) -> Any:
    """Env and --set values are strings; TOML-parse them so lists and numbers work."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def load_config(
    file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Config:
    """Merge file, env and ``section.field=value`` overrides (in rising priority) into a Config."""
    env = os.environ if env is None else env
    tree: dict[str, Any] = {}
    file = file or env.get(f"{ENV_PREFIX}CONFIG") or None
    if file:
        path = Path(file)
        try:
            tree = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist; fix --config or STREAMREC_CONFIG") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML ({exc}); fix the file") from None
    for name, raw in env.items():
        if name.startswith(ENV_PREFIX) and "__" in name:
            section, _, field = name[len(ENV_PREFIX) :].partition("__")
            _set_path(tree, f"{section.lower()}.{field.lower()}", _parse_scalar(raw), f"env {name}")
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE")
        _set_path(tree, key.strip(), _parse_scalar(raw.strip()), f"--set {item}")
    try:
        return msgspec.convert(tree, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc))) from None


def _explain(text: str) -> str:
    """Turn msgspec's "<problem> - at `$.section.field`" into a line that names the fix."""
    problem, _, at = text.partition(" - at `$.")
    where = at.rstrip("`")
    if "unknown field" in problem:
        field = problem.split("`")[1]
        struct = type(getattr(Config(), where)) if where else Config
        known = ", ".join(f.name for f in msgspec.structs.fields(struct))
        return f"config {where + '.' if where else ''}{field}: no such setting; known: {known}"
    setting = ".".join(re.sub(r"\[\d+\]", "", where).split(".")[:2])  # serving.publish_on[0] -> serving.publish_on
    env_name = ENV_PREFIX + setting.replace(".", "__").upper()
    return f"config {where}: {problem}; fix it with --set {setting}=..., {env_name} or the config file"


def config_reference() -> str:
    """Every field with its default, for ``--help`` and the README."""
    lines = []
    defaults = msgspec.to_builtins(Config())
    for section, fields in defaults.items():
        lines.append(f"[{section}]")
        for name, value in fields.items():
            lines.append(f"  {name} = {value!r}")
    return "\n".join(lines)
