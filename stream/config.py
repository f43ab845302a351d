"""One typed configuration object, built from defaults < TOML file < ``STREAMREC_*`` variables < ``--set``.

Every process receives a :class:`Config` instance; nothing reads the environment elsewhere. Each field
carries its description (``msgspec.Meta``), from which the reference is generated. A setting's name is
its dotted path (``serving.blend.student``); its variable is that path upper-cased with ``__`` (two
underscores, which no field name contains) for each dot: ``STREAMREC_SERVING__BLEND__STUDENT``.
``STREAMREC_CONFIG`` names the TOML file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from stream.config_loader import ENV_PREFIX, ENV_SEPARATOR, ConfigError, Setting, env_var, load, setting_paths

__all__ = [
    "ENV_PREFIX",
    "ENV_SEPARATOR",
    "BlendWeights",
    "Config",
    "ConfigError",
    "EventLimits",
    "KafkaConfig",
    "LearnerConfig",
    "MetricsConfig",
    "RegistryConfig",
    "ServingConfig",
    "Setting",
    "StateConfig",
    "TrainConfig",
    "WorkerConfig",
    "env_var",
    "load_config",
    "setting_paths",
]

Positive = Annotated[int, Meta(gt=0)]
NonNegative = Annotated[int, Meta(ge=0)]
PositiveFloat = Annotated[float, Meta(gt=0)]
Fraction = Annotated[float, Meta(ge=0, le=1)]
NonNegativeFloat = Annotated[float, Meta(ge=0)]
Port = Annotated[int, Meta(ge=0, le=65535)]


class KafkaConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The Kafka cluster, its topics and the consumer group the workers share."""

    bootstrap_servers: Annotated[
        str,
        Meta(
            description="Kafka bootstrap servers (HOST:PORT, comma-separated). Empty: commands that can "
            "(demo, bench) start the embedded Tansu broker; the others ask for one."
        ),
    ] = ""
    events_topic: Annotated[
        str, Meta(description="Topic the producer writes events to and the workers consume; its DLQ is TOPIC.dlq.")
    ] = "events"
    recommendations_topic: Annotated[
        str, Meta(description="Topic each worker publishes a user's fresh top-k to (keyed by user).")
    ] = "recommendations"
    signals_topic: Annotated[
        str, Meta(description="Topic the workers announce drift on; the periodic trainer retrains on it.")
    ] = "streamrec-signals"
    model_updates_topic: Annotated[
        str,
        Meta(
            description="Topic every model promotion is announced on (one JSON message each; see "
            "offline/registry); serving workers hot-swap the student when one arrives."
        ),
    ] = "model-updates"
    workers_topic: Annotated[
        str,
        Meta(
            description="Compacted topic where each serving worker advertises its HTTP address and partitions, "
            "so that any worker can forward a request to the user's owner (serving.advertised_url)."
        ),
    ] = "streamrec-workers"
    partitions: Annotated[
        Positive,
        Meta(
            description="Partitions of the events topic when streamrec creates it: the most workers that "
            "can share the stream. Raise it before scaling out; an existing topic keeps its count."
        ),
    ] = 4
    group_id: Annotated[
        str,
        Meta(description="Consumer group of the stream workers; give two deployments on one cluster different ids."),
    ] = "streamrec-workers"
    client_overrides: Annotated[
        dict[str, str],
        Meta(
            description="librdkafka settings passed verbatim to every client: SASL/TLS live here, e.g. "
            '{"security.protocol" = "SASL_SSL", "sasl.mechanism" = "PLAIN"}. Set as a whole table.'
        ),
    ] = {}

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
    """What an event may be before it is dead-lettered instead of applied."""

    max_bytes: Annotated[
        Positive, Meta(description="Largest encoded event accepted, in bytes; larger ones go to the DLQ.")
    ] = 8192
    allowed_lateness_ms: Annotated[
        NonNegative,
        Meta(
            description="Events older than this (milliseconds) relative to their partition's newest "
            "timestamp are dead-lettered; raise it for sources that deliver late."
        ),
    ] = 24 * 3600 * 1000


class StateConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Per-user and per-item state every learner reads; its bounds cap each worker's memory."""

    recent_items: Annotated[
        Positive,
        Meta(description="Items kept per user, newest first: the history item-kNN and the candidates start from."),
    ] = 40
    max_seen_per_user: Annotated[
        Positive,
        Meta(
            description="Items remembered per user as seen (excluded from their recommendations); the "
            "oldest are forgotten past this, bounding memory for heavy users."
        ),
    ] = 2000
    half_lives_s: Annotated[
        list[PositiveFloat],
        Meta(
            description="Half-lives in seconds of the decayed item counters, shortest first: trending and the "
            "exposure signals read the first, click-through rates the last; add one to follow another trend."
        ),
    ] = msgspec.field(default_factory=lambda: [300.0, 3600.0, 7 * 86400.0])
    covis_window: Annotated[
        Positive,
        Meta(
            description="How many of a user's previous clicks each click is paired with in the co-visitation "
            "counts (weight 1/(1+distance)); longer windows link items further apart in a session."
        ),
    ] = 40
    covis_neighbours: Annotated[
        Positive,
        Meta(
            description="Neighbours kept per item in the co-visitation table (a row is pruned back to this "
            "at twice as many): memory is O(items x this)."
        ),
    ] = 200
    sequence_tokens: Annotated[
        NonNegative,
        Meta(
            description="Latest impressions and clicks kept per user as tokens (item, kind, time gap): the "
            "history a sequence model reads at a request; it should be at least the model's history length. "
            "0: none kept. Memory: 32 bytes per token, per user (plus about 200 per user kept)."
        ),
    ] = 50
    shown_per_user: Annotated[
        Positive,
        Meta(
            description="Items remembered per user as shown to them (impressions, the exposure evidence); the "
            "least recently shown are forgotten past this. Memory: about 100 bytes per item kept, per user."
        ),
    ] = 200
    shown_decay: Annotated[
        Fraction,
        Meta(
            description="Factor a user's exposure counts are multiplied by per request of theirs: below 1, what "
            "they were shown long ago weighs less; 1 keeps every impression."
        ),
    ] = 1.0
    dedup_window: Annotated[
        Positive,
        Meta(
            description="Event ids remembered per partition to drop redelivered duplicates; cover at least "
            "the events between two snapshots."
        ),
    ] = 100_000


class LearnerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The online learners each worker updates with every event."""

    seed: Annotated[int, Meta(description="Seed of the learners' random draws (MF initialisation, negatives).")] = 7
    mf_factors: Annotated[
        Positive, Meta(description="Latent factors of the incremental matrix factorisation; more fit more, cost more.")
    ] = 16
    mf_learning_rate: Annotated[PositiveFloat, Meta(description="SGD step size of the incremental MF.")] = 0.2
    mf_regularisation: Annotated[Fraction, Meta(description="L2 penalty of the incremental MF's factors.")] = 0.01
    mf_negatives: Annotated[
        NonNegative, Meta(description="Sampled unclicked items per click in the MF's pairwise update.")
    ] = 4
    click_optimiser: Annotated[
        Literal["adagrad", "sgd"],
        Meta(
            description="How the click model's weights learn: AdaGrad (a step per weight that shrinks with its "
            "squared gradients, snapshotted with it) or plain SGD. On the development data AdaGrad kept "
            "MovieLens recall and beat the constant click-through rate per impression; SGD did one or the other."
        ),
    ] = "adagrad"
    click_learning_rate: Annotated[
        PositiveFloat,
        Meta(
            description="Step size of the click model's optimiser (the intercept's is 0.01, as in river). "
            "Chosen on development data: AdaGrad 0.1 on standardised features. Plain SGD on raw features "
            "needed 0.05 for MovieLens recall and 0.002 to be calibrated per impression."
        ),
    ] = 0.1
    click_standardise: Annotated[
        bool,
        Meta(
            description="Standardise the click model's features online (running mean and variance) before "
            "the regression: its features differ in scale by orders of magnitude. Raised MovieLens "
            "first-half recall@10 from 0.165 to 0.183 with AdaGrad."
        ),
    ] = True
    click_l2: Annotated[Fraction, Meta(description="L2 penalty of the click model's weights; 0 is none.")] = 0.0
    click_negative_rate: Annotated[
        Fraction,
        Meta(
            description="Share of non-clicked impressions the click model learns from, each weighted by "
            "1/rate (negative downsampling); raise it for a better-calibrated model at more cost."
        ),
    ] = 0.1
    click_sampled_negatives: Annotated[
        NonNegative,
        Meta(description="Items drawn from the candidates as negatives per click where no impressions are logged."),
    ] = 1
    candidates_per_source: Annotated[
        Positive, Meta(description="Candidates the click model draws from each learner when it samples negatives.")
    ] = 50
    drift_threshold: Annotated[
        PositiveFloat,
        Meta(
            description="Page-Hinkley threshold on the pairwise test's loss of item-kNN, MF and the click "
            "model, taken on every click: lower detects drift sooner and more often (each detection can "
            "trigger a retraining)."
        ),
    ] = 20.0
    drift_delta: Annotated[
        PositiveFloat,
        Meta(
            description="Page-Hinkley's tolerated rise of the mean loss before evidence accumulates. With the "
            "threshold at 20, on the synthetic world's development seeds (three learners' detectors each), 0.1 "
            "gave one false alarm before the drift and a detection within 1,000 clicks after it every time; "
            "0.05 gave eight false alarms, 0.15 missed two drifts."
        ),
    ] = 0.1
    blend_learning_rate: Annotated[
        NonNegativeFloat,
        Meta(
            description="Step size of the serving blend's online weights (stream/learners/blend.py); 0 keeps "
            "serving.blend fixed. 0.003, 0.01 and 0.03 gave recall@10 within 0.001 of each other in an "
            "offline sweep over the MovieLens-100K replay's candidates."
        ),
    ] = 0.01
    blend_sample_rate: Annotated[
        Fraction,
        Meta(
            description="Share of clicks the blend learns from (by a hash of the event id). Each costs one "
            "more scoring of the user's candidates: learning from every click doubled the demo's freshness "
            "p50/p99 (104/1,036 ms -> 243/2,136 ms with the trainer sharing two cores)."
        ),
    ] = 0.25


class WorkerConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A stream worker's batching, snapshots and local files."""

    batch_size: Annotated[
        Positive, Meta(description="Most events consumed and applied per batch; bigger batches raise throughput.")
    ] = 5000
    poll_timeout_s: Annotated[
        PositiveFloat,
        Meta(
            description="Seconds consume() waits to fill a batch: it bounds how long an event can sit before "
            "it is applied and its recommendation published. 0.2 s measured 130 ms median staleness at 1,000/s."
        ),
    ] = 0.02
    snapshot_every_events: Annotated[
        Positive,
        Meta(description="Snapshot a partition's state after this many applied events (less replay after a crash)."),
    ] = 50_000
    snapshot_every_s: Annotated[
        PositiveFloat, Meta(description="Snapshot a partition with pending events at least this often, in seconds.")
    ] = 10.0
    data_dir: Annotated[
        str, Meta(description="Directory of the worker's snapshots and training log (the trainer reads the log here).")
    ] = "./streamrec-data"
    training_log_retention_s: Annotated[
        PositiveFloat,
        Meta(description="Seconds of stream time the training log keeps; the disk it takes grows with it."),
    ] = 7 * 86400.0
    prequential_every: Annotated[
        Positive,
        Meta(
            description="Score the ranking learners (full catalogue, O(items) per click) on every n-th click; "
            "the click model is scored on every example it learns. `eval` scores every click."
        ),
    ] = 20


class RegistryConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The model registry: versions on disk and the gate a promotion passes."""

    root: Annotated[str, Meta(description="Directory of the model registry the trainer writes and workers serve.")] = (
        "./streamrec-models"
    )
    keep: Annotated[
        Positive, Meta(description="Versions kept on disk besides the current and the previous promoted one.")
    ] = 5
    gate_metric: Annotated[
        str, Meta(description="Validation metric (higher is better) the promotion gate compares, e.g. ndcg@10.")
    ] = "ndcg@10"
    gate_tolerance: Annotated[
        Fraction,
        Meta(description="How much worse (absolute) than the current model a candidate's gate_metric may be."),
    ] = 0.005


class TrainConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The offline trainer: teacher, distilled student, and when the periodic trainer retrains."""

    model: Annotated[
        Literal["pointwise", "sequence"],
        Meta(
            description="What is trained and served: the sequence teacher and its distilled sequence student, "
            "or the pointwise click models (docs/explanation/offline.md)."
        ),
    ] = "sequence"  # chosen on the development part (docs/explanation/offline.md, "On the serving path")
    seed: Annotated[int, Meta(description="Seed of training (initialisation, shuffling, sampled negatives).")] = 7
    validation_share: Annotated[
        Fraction, Meta(description="Share of the log, after the training part in time, used to validate.")
    ] = 0.1
    test_share: Annotated[Fraction, Meta(description="Share of the log, the latest in time, held out to test.")] = 0.1
    sampled_negatives: Annotated[
        Positive, Meta(description="Negatives per positive where the log has no impressions (uniform over unseen).")
    ] = 4
    recent_items: Annotated[
        Positive, Meta(description="Items of a user's history the teacher and the student see as features.")
    ] = 20
    epochs: Annotated[Positive, Meta(description="Most epochs per training run (early stopping may end sooner).")] = 8
    sequence_epochs: Annotated[
        Positive,
        Meta(
            description="Most epochs of a sequence model's fit (train.model=sequence); early stopping ends it sooner."
        ),
    ] = 100
    batch_size: Annotated[Positive, Meta(description="Examples per training step.")] = 1024
    learning_rate: Annotated[PositiveFloat, Meta(description="Adam step size of the teacher and the student.")] = 3e-3
    weight_decay: Annotated[Fraction, Meta(description="Adam weight decay (L2) of the networks.")] = 1e-4
    patience: Annotated[
        Positive, Meta(description="Epochs without a better validation figure before training stops early.")
    ] = 2
    curriculum: Annotated[
        bool, Meta(description="Order epochs from easy to hard examples; false trains on plain shuffled epochs.")
    ] = True
    warm_start: Annotated[
        bool,
        Meta(description="Start each version's teacher from the previous one (kept under registry.root/teacher/)."),
    ] = True
    teacher_listwise: Annotated[
        NonNegativeFloat,
        Meta(
            description="Weight of the teacher's group softmax (a click against its group) beside its "
            "pointwise losses; 1.0 was chosen on validation (docs, evaluation protocol); 0 switches it off."
        ),
    ] = 1.0
    test_clicks: Annotated[
        NonNegative,
        Meta(
            description="Test-window clicks ranked against the full catalogue for the report (deterministic "
            "samples in time order; 0 = all: with 2,000 the student's share of the teacher's NDCG had a "
            "+-6-point interval)."
        ),
    ] = 0
    validation_clicks: Annotated[
        NonNegative,
        Meta(description="Validation-window clicks ranked each epoch to select the student (0 = all)."),
    ] = 2000
    threads: Annotated[
        Positive, Meta(description="torch threads of the trainer; keep it below the cores so workers keep theirs.")
    ] = 2
    every_events: Annotated[
        NonNegative,
        Meta(description="The periodic trainer retrains after this many newly logged events (0: never for this)."),
    ] = 100_000
    every_s: Annotated[
        NonNegative, Meta(description="The periodic trainer retrains after this many seconds (0: never for this).")
    ] = 3600
    on_drift: Annotated[bool, Meta(description="The periodic trainer also retrains when a worker signals drift.")] = (
        True
    )
    poll_s: Annotated[
        PositiveFloat, Meta(description="Seconds between the periodic trainer's checks of its triggers.")
    ] = 5.0


class MetricsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The Prometheus endpoint every process exposes."""

    host: Annotated[str, Meta(description="Address the /metrics endpoint listens on; 0.0.0.0 for a scraper.")] = (
        "127.0.0.1"
    )
    port: Annotated[Port, Meta(description="Port of the /metrics endpoint; 0 disables it.")] = 9464


class BlendWeights(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Starting weights of each signal's standardised score (z-score over one request's candidates)
    in the final ranking; the worker then learns them from the clicks, and a partition restored from
    a snapshot goes on from its learned weights (learners.blend_learning_rate 0: these weights, as
    set, always). The student's weight is dropped when no model is loaded (the fallback).

    Equal by default, no preference: the learned weights do not depend on where they start."""

    student: Annotated[NonNegativeFloat, Meta(description="Starting weight of the distilled ONNX student.")] = 1.0
    item_knn: Annotated[NonNegativeFloat, Meta(description="Starting weight of item-kNN (co-visitation).")] = 1.0
    isgd_mf: Annotated[NonNegativeFloat, Meta(description="Starting weight of the incremental MF.")] = 1.0
    popularity: Annotated[NonNegativeFloat, Meta(description="Starting weight of decayed popularity.")] = 1.0
    trending: Annotated[
        NonNegativeFloat, Meta(description="Starting weight of clicks under the shortest half-life (what is hot now).")
    ] = 1.0
    shown: Annotated[
        NonNegativeFloat, Meta(description="Starting weight of how often the user was shown the item (exposure).")
    ] = 1.0
    category_exposure: Annotated[
        NonNegativeFloat, Meta(description="Starting weight of the user's share of impressions in the item's category.")
    ] = 1.0
    category_lift: Annotated[
        NonNegativeFloat,
        Meta(description="Starting weight of the user's click-through rate in the item's category over everyone's."),
    ] = 1.0
    click_model: Annotated[
        NonNegativeFloat,
        Meta(
            description="Starting weight of the click model's log P(seen) + log P(click | shown) (on logs "
            "without impressions, its logit of P(click))."
        ),
    ] = 1.0


class ServingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The serving path: candidates, the student's scoring, the blend, and the HTTP API."""

    host: Annotated[
        str, Meta(description="The HTTP API's address: loopback unless an operator opens it on purpose.")
    ] = "127.0.0.1"
    port: Annotated[Port, Meta(description="The HTTP API's port; 0 disables the API.")] = 8080
    api_token: Annotated[
        str,
        Meta(
            description="Bearer token every /v1/ request must carry (Authorization: Bearer ...); empty: none. "
            "Give it through STREAMREC_SERVING__API_TOKEN, not a file in version control."
        ),
    ] = ""
    k: Annotated[
        Positive, Meta(description="Items per published recommendation, and the default of the API's ?k=.")
    ] = 10
    max_k: Annotated[
        int, Meta(gt=0, le=1000), Meta(description="Largest ?k= a request may ask for (bounds a request's cost).")
    ] = 100
    covis_candidates: Annotated[
        NonNegative, Meta(description="Candidates from co-visitation per request before ranking.")
    ] = 100
    mf_candidates: Annotated[NonNegative, Meta(description="Candidates from the online MF per request.")] = 100
    mf_search_items: Annotated[
        Positive,
        Meta(
            description="Most items the MF candidate search covers: the most clicked ones, so that a request's "
            "cost stays bounded however many items have clicks (the search is one (items, factors) product)."
        ),
    ] = 20_000
    trending_candidates: Annotated[NonNegative, Meta(description="Candidates from trending items per request.")] = 50
    content_candidates: Annotated[
        NonNegative, Meta(description="Candidates from the user's categories and tags per request.")
    ] = 50
    shown_candidates: Annotated[
        NonNegative,
        Meta(description="Candidates from the items the user was shown most (impression logs) per request."),
    ] = 50
    item_lists_refresh_s: Annotated[
        PositiveFloat,
        Meta(description="Seconds between rebuilds of the item-side candidate lists (trending, per category)."),
    ] = 1.0
    exclude_items: Annotated[
        list[str], Meta(description="External item ids never recommended (e.g. withdrawn items).")
    ] = []
    exclude_seen: Annotated[
        bool,
        Meta(
            description="Never recommend an item the user clicked before (films, news). False for domains "
            "where people consume again (music, groceries): every learner and the prequential figures then "
            "keep seen items, and a re-click counts as rankable."
        ),
    ] = True
    publish_on: Annotated[
        list[Literal["impression", "click", "conversion"]],
        Meta(description="Event types that make the owning worker recompute and publish the user's top-k."),
    ] = msgspec.field(default_factory=lambda: ["click", "conversion"])
    threads: Annotated[
        Positive, Meta(description="onnxruntime intra-op threads per scoring call; one keeps a request on one core.")
    ] = 1
    registry_poll_s: Annotated[
        NonNegativeFloat,
        Meta(
            description="Seconds between registry re-reads: a safety net for a missed model-updates message (0: never)."
        ),
    ] = 30.0
    advertised_url: Annotated[
        str,
        Meta(
            description="The URL the other workers reach this worker's HTTP API at (Kafka Streams' "
            "application.server), e.g. http://worker-1:8080. Empty: http://HOST:PORT when serving.host is one "
            "address; with a wildcard host (0.0.0.0, ::) nothing is advertised and this worker neither forwards "
            "nor is forwarded to (a request for another worker's user gets 421)."
        ),
    ] = ""
    advert_interval_s: Annotated[
        PositiveFloat,
        Meta(
            description="Seconds between a worker's adverts on kafka.workers_topic (a change is advertised at "
            "once); an advert three intervals old no longer counts."
        ),
    ] = 2.0
    forward_timeout_s: Annotated[
        PositiveFloat,
        Meta(
            description="How long a request for another worker's user may wait for that worker's answer, "
            "rebalances included, before it is answered 503. Longer than a rebalance: a worker that leaves "
            "hands its partitions over in ~4 s on Tansu, one killed only after the session timeout (6 s) too."
        ),
    ] = 30.0
    blend: Annotated[
        BlendWeights,
        Meta(description="Starting weights of the final ranking's signals, learned from clicks as they come."),
    ] = msgspec.field(default_factory=BlendWeights)

    def most_candidates(self) -> int:
        """The most candidates one request ranks: every generator's share, none overlapping."""
        return (
            self.covis_candidates
            + self.mf_candidates
            + self.trending_candidates
            + self.content_candidates
            + self.shown_candidates
        )


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything a streamrec process can be told, one section per concern."""

    kafka: Annotated[KafkaConfig, Meta(description=KafkaConfig.__doc__)] = msgspec.field(default_factory=KafkaConfig)
    events: Annotated[EventLimits, Meta(description=EventLimits.__doc__)] = msgspec.field(default_factory=EventLimits)
    state: Annotated[StateConfig, Meta(description=StateConfig.__doc__)] = msgspec.field(default_factory=StateConfig)
    learners: Annotated[LearnerConfig, Meta(description=LearnerConfig.__doc__)] = msgspec.field(
        default_factory=LearnerConfig
    )
    worker: Annotated[WorkerConfig, Meta(description=WorkerConfig.__doc__)] = msgspec.field(
        default_factory=WorkerConfig
    )
    registry: Annotated[RegistryConfig, Meta(description=RegistryConfig.__doc__)] = msgspec.field(
        default_factory=RegistryConfig
    )
    train: Annotated[TrainConfig, Meta(description=TrainConfig.__doc__)] = msgspec.field(default_factory=TrainConfig)
    metrics: Annotated[MetricsConfig, Meta(description=MetricsConfig.__doc__)] = msgspec.field(
        default_factory=MetricsConfig
    )
    serving: Annotated[ServingConfig, Meta(description=ServingConfig.__doc__)] = msgspec.field(
        default_factory=ServingConfig
    )


def load_config(
    file: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> Config:
    """The Config of defaults < ``file`` (or ``STREAMREC_CONFIG``) < ``env`` (default os.environ) < ``overrides``."""
    return load(Config, file, overrides, env)
