"""deploy/docker-compose.yml and deploy/Dockerfile agree with the code's configuration.

Docker is not needed: the files are parsed and cross-checked against stream/config.py (through its
own loader), the topics the code names, the ports it listens on and Prometheus' scrape config.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath

import msgspec
import pytest
import yaml

from stream.config import Config, load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"

SERVICES = {"kafka", "kafka-init", "worker-1", "worker-2", "worker-3", "api", "trainer", "prometheus", "grafana"}
WORKERS = ("worker-1", "worker-2", "worker-3")
STREAMREC = (*WORKERS, "trainer")
ENV_NAME = re.compile(r"STREAMREC_([A-Z0-9]+)__([A-Z0-9_]+)")


# -- reading the files ----------------------------------------------------------------------------


@functools.cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service(name: str) -> dict:
    return compose()["services"][name]


def environment(name: str) -> dict[str, str]:
    """A service's environment as the container sees it: every value a string."""
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in env.items()}


def config(name: str) -> Config:
    """The Config a streamrec service runs with: its environment through the code's own loader."""
    return load_config(env=environment(name))


def command(name: str) -> list[str]:
    cmd = service(name).get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def mounts(name: str) -> list[dict]:
    """Volumes in short (``src:target[:ro]``) or long syntax, as {source, target, read_only, bind}."""
    out = []
    for v in service(name).get("volumes") or []:
        if isinstance(v, str):
            source, target, *mode = v.split(":")
            read_only = "ro" in (mode[0].split(",") if mode else [])
        else:
            source, target, read_only = v.get("source"), v["target"], bool(v.get("read_only"))
        bind = source.startswith((".", "/", "~"))
        out.append({"source": source, "target": PurePosixPath(target), "read_only": read_only, "bind": bind})
    return out


def mount_of(name: str, path: str) -> dict:
    """The mount that holds ``path`` inside the container (the deepest one)."""
    holding = [m for m in mounts(name) if PurePosixPath(path).is_relative_to(m["target"])]
    assert holding, f"{name}: nothing is mounted at {path}; it would live and die with the container"
    return max(holding, key=lambda m: len(m["target"].parts))


def host_path(name: str, container_path: str) -> Path:
    """Where a bind-mounted container path comes from on the host (relative to deploy/)."""
    m = mount_of(name, container_path)
    assert m["bind"], f"{name}: {container_path} is on a named volume, not a file of this repository"
    return (DEPLOY / m["source"]).resolve() / PurePosixPath(container_path).relative_to(m["target"])


def published_ports(name: str) -> list[tuple[int, int]]:
    """(host port, container port) of each published port."""
    out = []
    for p in service(name).get("ports") or []:
        if isinstance(p, dict):
            out.append((int(p["published"]), int(p["target"])))
        else:
            *_, published, target = str(p).split("/")[0].split(":")
            out.append((int(published), int(target)))
    return out


def depends_on(name: str) -> dict[str, str]:
    deps = service(name).get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: (spec or {}).get("condition", "service_started") for d, spec in deps.items()}


def listeners(variable: str) -> dict[str, tuple[str, int]]:
    """KAFKA_LISTENERS-style 'NAME://host:port,...' as {NAME: (host, port)}."""
    out = {}
    for item in environment("kafka")[variable].split(","):
        listener, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        out[listener] = (host, int(port))
    return out


def created_topics() -> dict[str, dict]:
    """{topic: {"partitions": n, "configs": {...}}} from kafka-init's kafka-topics.sh calls."""
    script = "\n".join(command("kafka-init")).replace("\\\n", " ")
    topics = {}
    for line in script.splitlines():
        if line.strip().startswith("#"):
            continue
        tokens = shlex.split(line)
        if "--topic" not in tokens or "--describe" in tokens:
            continue
        name = tokens[tokens.index("--topic") + 1]
        assert "--partitions" in tokens, f"kafka-init: topic {name} has no explicit --partitions"
        configs = dict(tokens[i + 1].split("=", 1) for i, t in enumerate(tokens) if t == "--config")
        topics[name] = {"partitions": int(tokens[tokens.index("--partitions") + 1]), "configs": configs}
    return topics


def topics_named_by(cfg: Config) -> set[str]:
    """Every topic a KafkaConfig names: its *_topic fields and derived properties (e.g. dlq_topic)."""
    kafka = cfg.kafka
    return {getattr(kafka, attr) for attr in dir(kafka) if attr.endswith("_topic")}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comment lines dropped."""
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        instruction, _, args = (pending + stripped).strip().partition(" ")
        out.append((instruction.upper(), args.strip()))
        pending = ""
    return out


def stages() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """{stage name: (the image or stage it is FROM, its instructions after FROM)}."""
    out: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    steps: list[tuple[str, str]] = []
    for instruction, args in dockerfile():
        if instruction == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            assert len(words) == 3 and words[1].upper() == "AS", f"FROM {args}: name every stage"
            steps = []
            out[words[2]] = (words[0], steps)
        else:
            steps.append((instruction, args))
    return out


def target(name: str) -> list[tuple[str, str]]:
    """The instructions an image built with ``--target name`` runs: its stage's, after its bases'."""
    base, steps = stages()[name]
    return (target(base) if base in stages() else []) + steps


def lock_of(name: str) -> str:
    """The lock file the venv of target ``name`` installs (the stage its /opt/venv is copied from)."""
    sources = [re.search(r"--from=(\S+)", args)[1] for instr, args in target(name) if "--from=" in args]
    installs = [args for instr, args in target(sources[-1]) if instr == "RUN" and " -r " in args]
    copies = {}
    for instruction, args in target(sources[-1]):
        if instruction == "COPY" and "--from" not in args:
            *srcs, dest = shlex.split(args)
            copies[dest] = srcs[0] if len(srcs) == 1 else None
    assert len(installs) == 1, f"{name}: one pip install -r of a lock"
    return copies[re.search(r" -r (\S+)", installs[0])[1]]


def is_pinned(image: str) -> bool:
    """A digest, or a tag that names a version: not missing, not `latest`."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and any(ch.isdigit() for ch in tag)


# -- services and startup -----------------------------------------------------------------------------


def test_the_services_are_the_ones_prometheus_and_the_runbooks_name():
    assert set(compose()["services"]) == SERVICES


def test_every_image_is_pinned_to_a_version():
    for name, svc in compose()["services"].items():
        assert "image" in svc, f"{name} has no image tag"
        assert is_pinned(svc["image"]), f"{name}: image {svc['image']!r} is not pinned to a version"


def test_the_streamrec_images_are_built_from_deploy_dockerfile_and_tagged_with_the_package_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name in STREAMREC:
        build = service(name)["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, f"{name}: the build context must be the repository root"
        assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
        expected = "trainer" if name == "trainer" else "worker"
        assert build.get("target") == expected, f"{name}: build the {expected} target"
        assert service(name)["image"] == f"streamrec-{expected}:{version}"


def test_startup_waits_for_a_healthy_broker_and_created_topics():
    assert "healthcheck" in service("kafka")
    assert depends_on("kafka-init") == {"kafka": "service_healthy"}
    assert service("kafka-init").get("restart", "no") == "no", "a one-shot job must not be restarted"
    for name in STREAMREC:
        assert depends_on(name).get("kafka-init") == "service_completed_successfully", name
    assert depends_on("grafana").get("prometheus") == "service_healthy"


def test_every_service_waited_on_as_healthy_has_a_healthcheck():
    for name in compose()["services"]:
        for dependency, condition in depends_on(name).items():
            if condition == "service_healthy":
                assert "healthcheck" in service(dependency), f"{name} waits for {dependency} to be healthy"


def test_workers_are_serve_replicas_in_one_consumer_group_and_the_trainer_retrains_periodically():
    configs = [config(name) for name in WORKERS]
    for name in WORKERS:
        assert command(name)[0] == "serve", f"{name}: `serve` is the worker that also scores and publishes"
    assert len({c.kafka.group_id for c in configs}) == 1
    assert command("trainer")[0] == "train" and "--once" not in command("trainer")


# -- configuration through the code's own loader ------------------------------------------------------


def test_every_streamrec_variable_names_a_config_field_and_the_loader_accepts_the_environment():
    fields = {(s.name, f.name) for s in msgspec.structs.fields(Config) for f in msgspec.structs.fields(s.type)}
    for name in STREAMREC:
        variables = [v for v in environment(name) if v.startswith("STREAMREC_")]
        assert variables, f"{name} sets no STREAMREC_* variable"
        for var in variables:
            match = ENV_NAME.fullmatch(var)
            assert match and (match[1].lower(), match[2].lower()) in fields, (
                f"{name}: {var} is not STREAMREC_<SECTION>__<FIELD> of a field of stream/config.py"
            )
        config(name)  # raises ConfigError on a value the field refuses


def test_the_dockerfiles_streamrec_variables_name_config_fields_too():
    env = {}
    for instruction, args in dockerfile():
        if instruction == "ENV":
            env.update(token.split("=", 1) for token in shlex.split(args))
    fields = {(s.name, f.name) for s in msgspec.structs.fields(Config) for f in msgspec.structs.fields(s.type)}
    for var in (v for v in env if v.startswith("STREAMREC_")):
        match = ENV_NAME.fullmatch(var)
        assert match and (match[1].lower(), match[2].lower()) in fields, var
    load_config(env=env)


def test_streamrec_services_reach_kafka_on_its_listener_for_containers():
    advertised = listeners("KAFKA_ADVERTISED_LISTENERS")
    names = {"kafka", service("kafka").get("hostname", "kafka")}
    for name in STREAMREC:
        for server in config(name).kafka.bootstrap_servers.split(","):
            host, _, port = server.rpartition(":")
            assert host in names, f"{name}: {server} is not the kafka service"
            assert (host, int(port)) in advertised.values(), f"{name}: kafka advertises no listener {server}"
    for line in command("kafka-init"):
        for server in re.findall(r"--bootstrap-server (\S+)", line):
            assert server == config("worker-1").kafka.bootstrap_servers


def test_kafka_runs_in_kraft_mode_with_every_setting_commented():
    env = environment("kafka")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env) and "zookeeper" not in compose()["services"]
    assert set(listeners("KAFKA_ADVERTISED_LISTENERS")) <= set(listeners("KAFKA_LISTENERS"))
    # Text check: each setting is in a small group directly under a comment line.
    lines = COMPOSE_FILE.read_text().splitlines()
    start = lines.index("  kafka:")
    env_at = next(i for i in range(start, len(lines)) if lines[i].strip() == "environment:")
    group = None
    for line in lines[env_at + 1 :]:
        if not line.startswith(" " * 6):
            break
        if line.strip().startswith("#"):
            group = 0
        elif line.strip():
            assert group is not None and group < 4, f"Kafka setting without a comment saying why: {line.strip()}"
            group += 1


# -- topics -------------------------------------------------------------------------------------------


def test_kafka_init_creates_every_topic_the_config_names():
    created = created_topics()
    assert environment("kafka").get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false"  # nothing else creates them
    assert topics_named_by(Config()) <= set(created), f"missing: {topics_named_by(Config()) - set(created)}"
    for name in STREAMREC:
        assert topics_named_by(config(name)) <= set(created), name


def test_the_events_topic_has_a_partition_for_every_worker_and_the_configured_count():
    created = created_topics()
    cfg = config("worker-1")
    events = created[cfg.kafka.events_topic]["partitions"]
    assert events >= 2 and events >= len(WORKERS)
    # The code creates events and recommendations with kafka.partitions when they are missing.
    for name in STREAMREC:
        assert config(name).kafka.partitions == events, name
    assert created[cfg.kafka.recommendations_topic]["partitions"] == events


def test_keyed_latest_value_topics_are_compacted_and_the_others_delete():
    created, kafka = created_topics(), Config().kafka
    policy = {topic: spec["configs"].get("cleanup.policy", "delete") for topic, spec in created.items()}
    assert policy[kafka.recommendations_topic] == "compact"  # keyed by user id: the latest list per user
    assert policy[kafka.model_updates_topic] == "compact"  # keyed by model name: the latest promotion
    # Events are a log; dead letters keep the original (maybe missing) key; drift signals have none.
    for topic in (kafka.events_topic, kafka.dlq_topic, kafka.signals_topic):
        assert policy[topic] == "delete", topic


def test_the_events_topic_retains_at_least_the_training_logs_window():
    cfg = config("worker-1")
    retention_ms = int(created_topics()[cfg.kafka.events_topic]["configs"].get("retention.ms", 7 * 86400 * 1000))
    assert retention_ms >= cfg.worker.training_log_retention_s * 1000


# -- shared state ----------------------------------------------------------------------------------------


def test_workers_and_trainer_share_snapshots_and_training_log_through_one_volume():
    data = {name: mount_of(name, config(name).worker.data_dir) for name in STREAMREC}
    assert len({config(name).worker.data_dir for name in STREAMREC}) == 1
    assert len({m["source"] for m in data.values()}) == 1
    volume = data["trainer"]["source"]
    assert volume in (compose().get("volumes") or {}), "the data directory must be a named volume"
    for name in WORKERS:
        assert not data[name]["read_only"], f"{name} writes snapshots and the training log"


def test_the_registry_is_one_volume_at_one_path_written_by_the_trainer_only():
    # A model-updates message names the version's absolute path: it must be the same in every container.
    assert len({config(name).registry.root for name in STREAMREC}) == 1
    registry = {name: mount_of(name, config(name).registry.root) for name in STREAMREC}
    assert len({m["source"] for m in registry.values()}) == 1
    assert not registry["trainer"]["read_only"]
    for name in WORKERS:
        assert registry[name]["read_only"], f"{name} only reads models"


# -- ports -----------------------------------------------------------------------------------------------


def test_each_worker_publishes_its_api_on_serving_port_open_beyond_loopback():
    host_ports = []
    for name in WORKERS:
        cfg = config(name)
        assert cfg.serving.host == "0.0.0.0" and cfg.serving.port
        targets = [target for _, target in published_ports(name)]
        assert targets == [cfg.serving.port], name
        host_ports += [published for published, _ in published_ports(name)]
        assert f":{cfg.serving.port}/healthz" in " ".join(service(name)["healthcheck"]["test"])
    assert len(host_ports) == len(set(host_ports)), "two workers publish the same host port"


def test_one_address_spreads_requests_over_every_worker_and_each_worker_advertises_where_it_is_reached():
    """Forwarding needs each worker's advertised URL to be its compose name and serving port; the
    front (nginx) must list exactly the workers, on that port."""
    for name in WORKERS:
        assert config(name).serving.advertised_url == f"http://{name}:{config(name).serving.port}", name
    nginx = host_path("api", "/etc/nginx/nginx.conf").read_text()
    upstream = re.findall(r"^\s*server\s+([\w.-]+):(\d+);", nginx, flags=re.MULTILINE)
    assert sorted(upstream) == sorted((name, str(config(name).serving.port)) for name in WORKERS)
    assert [target for _, target in published_ports("api")] == [int(re.search(r"listen (\d+);", nginx)[1])]
    assert {depends_on("api")[name] for name in WORKERS} == {"service_healthy"}


def test_each_streamrec_service_serves_metrics_on_metrics_port_to_the_network():
    for name in STREAMREC:
        cfg = config(name)
        assert cfg.metrics.port and cfg.metrics.host == "0.0.0.0", name
        assert str(cfg.metrics.port) in [str(p) for p in service(name).get("expose", [])], name
    assert f":{config('trainer').metrics.port}/metrics" in " ".join(service("trainer")["healthcheck"]["test"])


def test_prometheus_scrapes_every_streamrec_service_on_its_metrics_port():
    if not PROMETHEUS_CONFIG.exists():
        pytest.skip("deploy/prometheus/prometheus.yml is not written yet")
    prometheus = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    scraped: dict[str, str] = {}
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                if host in ("localhost", "127.0.0.1"):  # Prometheus scraping itself
                    assert int(port) in [t for _, t in published_ports("prometheus")], target
                    continue
                assert host in SERVICES, f"scrape target {target} is not a compose service"
                if host in STREAMREC:
                    assert int(port) == config(host).metrics.port, f"{target}: {host} serves metrics elsewhere"
                scraped[host] = job["job_name"]
    assert set(STREAMREC) <= set(scraped), f"not scraped: {set(STREAMREC) - set(scraped)}"
    assert len({scraped[name] for name in WORKERS}) == 1, "the workers of one group are one job"


def test_prometheus_and_grafana_mount_the_files_in_deploy():
    flags = dict(arg.split("=", 1) for arg in command("prometheus") if arg.startswith("--") and "=" in arg)
    config_in_container = flags.get("--config.file", "/etc/prometheus/prometheus.yml")
    assert host_path("prometheus", config_in_container) == PROMETHEUS_CONFIG.resolve()
    if PROMETHEUS_CONFIG.exists():  # rule_files are relative to the config file, in the container too
        for pattern in yaml.safe_load(PROMETHEUS_CONFIG.read_text()).get("rule_files", []):
            container = PurePosixPath(config_in_container).parent / pattern
            on_host = host_path("prometheus", str(container.parent))
            assert list(on_host.glob(container.name)), f"rule file {pattern} is not mounted"
    assert host_path("grafana", "/etc/grafana/provisioning") == (DEPLOY / "grafana" / "provisioning").resolve()
    assert host_path("grafana", "/var/lib/grafana/dashboards") == (DEPLOY / "grafana" / "dashboards").resolve()
    for provider in (DEPLOY / "grafana" / "provisioning" / "dashboards").glob("*.yml"):
        for p in yaml.safe_load(provider.read_text()).get("providers", []):
            assert host_path("grafana", p["options"]["path"]).is_dir(), provider
    for source in (DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.yml"):
        for ds in yaml.safe_load(source.read_text()).get("datasources", []):
            if ds.get("type") == "prometheus":
                host, _, port = ds["url"].split("://", 1)[1].rstrip("/").rpartition(":")
                assert host == "prometheus" and int(port) in [t for _, t in published_ports("prometheus")]


# -- the image -----------------------------------------------------------------------------------------


def test_the_dockerfile_bases_are_pinned():
    stages = set()
    for instruction, args in dockerfile():
        if instruction != "FROM":
            continue
        words = [w for w in args.split() if not w.startswith("--")]
        image = words[0]
        if image not in stages:
            assert is_pinned(image), f"FROM {image} is not pinned to a version"
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2])
    assert stages, "a multi-stage build: a builder stage and a final one"


def test_the_images_run_as_a_user_that_is_not_root():
    for name in ("worker", "trainer"):
        users = [args for instruction, args in target(name) if instruction == "USER"]
        assert users, f"the {name} target has no USER: it would run as root"
        user = users[-1].split(":")[0]
        assert user not in ("root", "0")


def test_the_images_install_the_lock_files_that_exist():
    for instruction, args in dockerfile():
        if instruction == "COPY" and "--from" not in args:
            for src in shlex.split(args)[:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: no such file in the build context"
    assert lock_of("worker") == "requirements/runtime.txt"
    assert lock_of("trainer") == "requirements/train.txt"
    assert not re.search(r"^torch==", (ROOT / lock_of("worker")).read_text(), re.MULTILINE), "the worker has no torch"
    assert "+cpu" in (ROOT / lock_of("trainer")).read_text()
    installs = [args for instruction, args in dockerfile() if instruction == "RUN" and "requirements.txt" in args]
    trainer = [args for args in installs if "-r" in args and "download.pytorch.org/whl/cpu" in args]
    assert len(trainer) == 1, "the +cpu torch is on PyTorch's CPU index, which only the trainer's install adds"


def test_the_build_context_keeps_what_the_image_copies_and_ignores_local_state():
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv"} <= ignored
    for instruction, args in dockerfile():
        if instruction == "COPY" and "--from" not in args:
            for src in [w for w in shlex.split(args) if not w.startswith("--")][:-1]:
                assert Path(src).parts[0] not in ignored, f"COPY {src} but .dockerignore excludes it"


def test_the_entrypoint_is_the_streamrec_cli():
    for name in ("worker", "trainer"):
        entrypoints = [args for instruction, args in target(name) if instruction == "ENTRYPOINT"]
        assert entrypoints and json.loads(entrypoints[-1]) == ["python", "-m", "streamrec"]
    for name in STREAMREC:  # and every service's command is a subcommand of it
        from streamrec.cli import parse

        parse(command(name))
