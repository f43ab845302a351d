"""The CLI: every subcommand has --help; bad input gets one line and exit code 2; JSON is JSON."""

import json
import subprocess
import sys

import pytest

from stream.processor import LEARNERS
from streamrec.cli import main

COMMANDS = [
    "broker",
    "produce",
    "stream",
    "serve",
    "eval",
    "bench",
    "demo",
    "train",
    "model",
    "report",
    "soak",
    "config",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command, capsys):
    assert main([command, "--help"]) == 0
    assert "Usage: streamrec " + command in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["eval", "prequential", "--set", "worker.batch_size=0"], "worker.batch_size"),
        (["eval", "prequential", "--set", "nope.x=1"], "no setting nope.x; the sections are"),
        (["eval", "prequential", "--set", "serving.blend.studnt=2"], "did you mean serving.blend.student?"),
        (["eval", "prequential", "--no-such-flag"], "No such option '--no-such-flag'"),
        (["eval", "prequential", "--datset", "file"], "Did you mean one of: '--dataset'"),
        (["eval", "nonsense"], "'nonsense' is not 'prequential'"),
        (["model", "promote"], "Missing argument 'VERSION'"),
        (["eval", "prequential", "--dataset", "file"], "--path"),
        (["produce"], "--bootstrap-servers"),
        (["stream"], "--bootstrap-servers"),
        (["serve"], "--bootstrap-servers"),
        (["train", "--once", "--from-log", "--set", "worker.data_dir=/nonexistent"], "run a worker first"),
        (["train", "--once", "--ablations", "--set", "train.model=sequence"], "reports its ablations itself"),
        (["train", "--once", "--warm-start-check", "--set", "train.model=sequence"], "drop --warm-start-check"),
        (["train", "--once", "--set", "train.model=transformer"], "train.model"),
        (
            [
                "train",
                "--once",
                "--dataset",
                "synthetic",
                "--sessions",
                "300",
                "--set",
                "train.test_share=0",
                "--set",
                "train.model=pointwise",
            ],
            "raise train.test_share",
        ),
    ],
)
def test_bad_arguments_get_one_line_naming_the_fix(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err and err.startswith("streamrec ")


def test_the_periodic_trainer_under_torchrun_is_refused_before_joining_a_group(monkeypatch, capsys):
    """Each rank's triggers (time, log, drift) would fire on their own and start a collective fit alone."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train"]) == 2
    assert "train --once only" in capsys.readouterr().err


def test_bad_config_file_is_one_line(tmp_path, capsys):
    assert main(["eval", "prequential", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_eval_prequential_prints_one_json_object(capsys):
    assert main(["eval", "prequential", "--dataset", "synthetic", "--sessions", "300", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for learner in LEARNERS:
        assert {"recall@10", "ndcg@10"} <= set(result[learner])
    assert result["_run"]["dataset"] == "synthetic"


def test_eval_of_a_user_log(tmp_path, capsys):
    log = tmp_path / "clicks.csv"
    log.write_text("u,i,t\n" + "".join(f"u{n % 7},i{n % 11},{1_767_225_600 + n}\n" for n in range(200)))
    assert (
        main(
            [
                "eval",
                "prequential",
                "--dataset",
                "file",
                "--path",
                str(log),
                "--user-col",
                "u",
                "--item-col",
                "i",
                "--time-col",
                "t",
                "--time-unit",
                "s",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["popularity"]["scored_clicks"] == 200
    # 7 users x 11 items: the first 77 clicks meet 77 distinct (user, item) pairs, the rest re-click,
    # the first click on each of the 11 items meets a catalogue without it, and click n is ranked
    # against min(n, 11) items: (0 + 1 + ... + 10 + 189 x 11) / 200.
    assert result["_served_rule"] == {
        "scored_clicks": 200,
        "exclude_seen": True,
        "reclick_share": 0.615,
        "new_item_share": 0.055,
        "mean_catalogue_items": 10.67,
    }


@pytest.mark.integration
def test_bench_stream_reports_both_rates_and_writes_them_stamped(tmp_path):
    output = tmp_path / "stream.json"
    command = ["bench", "stream", "--events", "20000", "--runs", "1", "--json", "--output", str(output)]
    out = subprocess.run(
        [sys.executable, "-m", "streamrec.cli", *command], capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(out.stdout)
    assert result["events"] == 20000
    assert result["events_per_s"] > 0 and result["raw_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["events_per_s"] / result["raw_per_s"], rel=0.01)
    written = json.loads(output.read_text())
    assert written == result
    assert written["_run"]["bench"] == "stream" and written["_run"]["command"] == "streamrec " + " ".join(command)
    assert written["_run"]["commit"] and written["_run"]["date"].startswith("20")


@pytest.mark.integration
def test_demo_runs_the_pipeline_end_to_end(tmp_path):
    """Stream, a model trained from the log and hot-swapped in, published recommendations, HTTP; and the
    run's record, which `streamrec report` renders into a page whose plots all load in headless Chromium."""
    from stream.kafka.broker import free_port
    from streamrec.run_record import load_record
    from tests.test_report import ABLATIONS, ALL_PLOTS, assert_renders_in_chromium

    record = tmp_path / "run.json"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamrec.cli",
            "demo",
            "--sessions",
            "500",
            "--json",
            "--metrics-port",
            "0",
            "--port",
            str(free_port()),
            "--train-every",
            "2000",
            "--wait-for-model",
            "600",
            "--run-record",
            str(record),
        ],  # deadlines, not waits: the
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )  # demo ends once a model serves
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["events_applied"] == summary["events_produced"] > 0
    assert summary["dead_lettered"] == 0
    assert set(summary["prequential"]) == set(LEARNERS)
    assert summary["model_versions_served"] == [1], out.stderr[-2000:]
    assert summary["recommendations_published"] > 0 and summary["freshness_ms"]["n"] > 0
    assert summary["blend_updates"] > 0  # the serving blend learned from the clicks as they came
    assert summary["http_ms"]["n"] > 0 and summary["http_ms"]["failed"] == 0

    run = load_record(summary["run_record"])
    assert run.prequential.events[-1] == summary["events_applied"]
    assert all(curve.scored[-1] > 0 for curve in run.prequential.learners.values())
    assert [(c.action, c.version) for c in run.models.history] == [("promote", 1)]
    assert [s.version for s in run.models.served] == [1]
    assert all(run.latency_ms[name].n > 0 for name in ("scoring", "freshness", "http"))
    (tmp_path / "ablations.json").write_text(json.dumps(ABLATIONS))  # `train --ablations` is a run of its own
    page = tmp_path / "report.html"
    assert main(["report", str(record), "--ablations", str(tmp_path / "ablations.json"), "-o", str(page)]) == 0
    assert_renders_in_chromium(page, ALL_PLOTS, tmp_path)


def test_a_busy_metrics_port_is_one_line(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["stream", "--bootstrap-servers", "127.0.0.1:1", "--metrics-port", str(port)]) == 2
    assert "--metrics-port" in capsys.readouterr().err


# uvicorn ends a failed start-up with SystemExit: on the server's thread that must not escape as an
# unhandled thread exception, beside the one line.
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_busy_api_port_is_one_line(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--sessions", "10", "--metrics-port", "0", "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("streamrec demo:") and "--port" in err


def test_an_unreachable_broker_is_one_line(capsys):
    from stream.kafka.broker import free_port

    assert main(["produce", "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--limit", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach Kafka" in err and "\n" not in err


def test_version_prints_the_distributions_version(capsys):
    from streamrec.cli import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"streamrec {version()}\n"


def imported_by(code: str) -> set[str]:
    """Top-level packages a fresh interpreter has imported after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {name.split(".")[0] for name in out.stdout.split()}


def test_serve_and_its_help_import_neither_torch_nor_offline():
    help_ = "from streamrec.cli import main; main(['serve', '--help'])"
    assert not imported_by(help_) & {"torch", "offline"}
    # serve imports its implementation before waiting for Kafka; SIGTERM ends the wait.
    serve = (
        "import os, signal, threading; from streamrec.cli import main\n"
        "threading.Timer(3, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()\n"
        "assert main(['serve', '--bootstrap-servers', '127.0.0.1:1', '--metrics-port', '0', '--port', '0']) == 0"
    )
    modules = imported_by(serve)
    assert "serving" in modules and not modules & {"torch", "offline"}


POSITIONAL = {"eval": ["prequential"], "bench": ["stream"], "model promote": ["1"]}


def commands_taking_config() -> list[list[str]]:
    import click

    from streamrec.cli import cli

    found = []
    for name, command in cli.commands.items():
        leaves = command.commands.items() if isinstance(command, click.Group) else [("", command)]
        for sub, leaf in leaves:
            path = " ".join(filter(None, [name, sub]))
            if any(p.name == "overrides" for p in leaf.params):
                found.append([*path.split(), *POSITIONAL.get(path, [])])
    return found


def loaded(argv: list[str]):
    from streamrec.cli import parse
    from streamrec.cli.options import Settings

    return Settings.from_context(parse(argv)).load()


def test_set_reaches_a_nested_setting_on_every_command_that_takes_config():
    commands = commands_taking_config()
    assert len(commands) == 13  # every command but `report` and `config reference`
    for argv in commands:
        assert loaded([*argv, "--set", "serving.blend.student=2"]).serving.blend.student == 2.0, argv
        assert (
            loaded(
                [*argv, "--set", "serving.blend.student=2", "--set", "serving.blend.student=3"]
            ).serving.blend.student
            == 3.0
        )


def test_a_variable_sets_a_nested_setting_and_set_beats_it(monkeypatch):
    monkeypatch.setenv("STREAMREC_SERVING__BLEND__STUDENT", "4")
    assert loaded(["demo"]).serving.blend.student == 4.0
    assert loaded(["demo", "--set", "serving.blend.student=2"]).serving.blend.student == 2.0


def test_a_shortcut_flag_beats_set():
    cfg = loaded(["stream", "--set", "worker.data_dir=a", "--data-dir", "b"])
    assert cfg.worker.data_dir == "b"


def test_no_function_in_the_cli_is_longer_than_a_screen():
    import ast
    from pathlib import Path

    import streamrec.cli

    for path in Path(streamrec.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 60, f"{path.name}:{node.lineno} {node.name} has {length} lines"


def test_the_cli_reference_has_every_command_and_every_option_with_its_help():
    from streamrec.reference.cli import render

    sections = {s.split("`", 1)[0]: s for s in render().split("\n## `streamrec ")[1:]}
    expected = {" ".join(argv[: 2 if argv[0] in ("model", "config") else 1]) for argv in commands_taking_config()}
    assert set(sections) == expected | {"config reference", "report"}
    demo = sections["demo"]
    assert "| `--set NAME=VALUE` | Override any setting, at any depth" in demo
    assert "| `--train-every INTEGER` | Retrain after this many new logged events. [default: 100000] |" in demo
    assert "| `--data-dir TEXT` | Keep snapshots and the training log here" in demo
    assert "| `VERSION` | Required. |" in sections["model promote"]
    assert "| `MODE` | One of: prequential. |" in sections["eval"]


def test_config_show_prints_the_merged_config_as_a_file_that_loads_back(tmp_path, monkeypatch, capsys):
    from stream.config import load_config

    monkeypatch.setenv("STREAMREC_SERVING__BLEND__ITEM_KNN", "3")
    assert main(["config", "show", "--set", "serving.blend.student=2"]) == 0
    (tmp_path / "shown.toml").write_text(capsys.readouterr().out)
    shown = load_config(tmp_path / "shown.toml", env={})
    assert (shown.serving.blend.student, shown.serving.blend.item_knn) == (2.0, 3.0)
    assert shown == load_config(overrides=["serving.blend.student=2", "serving.blend.item_knn=3"], env={})
    assert main(["config", "show", "--set", "serving.blend.student=2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["serving"]["blend"]["student"] == 2.0
