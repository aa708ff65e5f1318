"""The command line's rough edges: every argument explains itself, and a busy port is one line of error,
found before seconds of loading, with a non-zero exit status."""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import build_parser, main
from bot.i18n import LOCALES, translator


def parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def test_every_argument_of_every_command_has_help() -> None:
    missing = [
        f"{prog} {action.dest}"
        for prog, parser in parsers(build_parser())
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._SubParsersAction)
    ]
    assert missing == []


@pytest.mark.parametrize("locale", LOCALES)
def test_help_of_every_command_renders_in_every_language(
    locale: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Help texts carry argparse's %(default)s: a translation that mangles it would break `-h`.
    monkeypatch.setattr("bot.cli._", translator(locale).gettext)
    helps = {prog: parser.format_help() for prog, parser in parsers(build_parser())}
    assert all(text.startswith("usage: " + prog) for prog, text in helps.items())
    assert "186100" in helps["yizhan stations seed"] and "%(" not in "".join(helps.values())


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


@pytest.fixture
def loading_forbidden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The database a command would open; opening the core at all fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the port must be checked before anything is loaded")

    monkeypatch.setattr("bot.app.open_core", refuse)
    monkeypatch.setattr("bot.app.install_event_loop_policy", lambda: None)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "cli.db"


@pytest.mark.parametrize("command", ["serve", "demo", "run"])
def test_a_busy_port_is_one_line_of_error_before_loading(
    command: str,
    busy_port: int,
    loading_forbidden: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if command == "run":  # webhook mode listens; polling does not
        monkeypatch.setenv("BOT_TOKEN", "1:x")
        monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/webhook")
        monkeypatch.setenv("WEBHOOK_SECRET", "s" * 32)
    status = main([command, "--host", "127.0.0.1", "--port", str(busy_port)])
    assert status != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"127.0.0.1:{busy_port}" in err and "--port" in err
    assert "Traceback" not in err
    assert not loading_forbidden.exists()


def test_serve_says_where_the_page_api_health_and_metrics_are(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        "LANGUAGE": "en",
        "STATION_CACHE_SIZE": "0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(5)]
        found = dict(re.findall(r"^\s+([A-Za-z0-9 ]+):\s+(http://\S+)", "".join(lines), flags=re.M))
        assert set(found) == {"H5 page", "API", "health", "metrics"}, lines
        assert found["H5 page"].endswith("/") and found["H5 page"].count("/") == 3
        assert found["health"].endswith("/healthz") and found["metrics"].endswith("/metrics")
        for url in (found["H5 page"], found["health"], found["metrics"], found["API"] + "openapi.json"):
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200, url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


@pytest.mark.parametrize("command", ["serve", "demo", "run"])
def test_a_port_taken_while_loading_is_one_line_of_error_too(
    command: str,
    busy_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The check before loading found the port free; another program took it while the index loaded.
    monkeypatch.setattr("bot.cli.ensure_port_free", lambda host, port: None)
    if command == "run":  # webhook mode; Telegram is not told of a URL nobody listens on
        monkeypatch.setenv("BOT_TOKEN", "1:x")
        monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:9")
        monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/webhook")
        monkeypatch.setenv("WEBHOOK_SECRET", "s" * 32)
    monkeypatch.setattr("bot.app.install_event_loop_policy", lambda: None)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("STATION_CACHE_SIZE", "0")
    monkeypatch.chdir(tmp_path)
    assert main([command, "--host", "127.0.0.1", "--port", str(busy_port)]) == 1
    err = capsys.readouterr().err.strip()
    # Log lines of the loading come first (JSON, when not on a terminal); the error is the last line, and
    # nothing escaped as a traceback.
    assert not [line for line in err.splitlines() if line.startswith("Traceback")], err
    last = err.splitlines()[-1]
    assert f"127.0.0.1:{busy_port}" in last and "--port" in last, err


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    """`yizhan stations export | head -1`: the reader closes the pipe long before the export is written
    (it is larger than a pipe's buffer), and the command ends with status 1 and no traceback."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'pipe.db'}",
        "LANGUAGE": "en",
        "STATION_CACHE_SIZE": "0",
    }
    yizhan = [sys.executable, "-m", "bot"]
    seeded = subprocess.run(
        [*yizhan, "stations", "seed", "--count", "1500"], env=env, capture_output=True, timeout=120
    )
    assert seeded.returncode == 0, seeded.stderr.decode()
    whole = subprocess.run([*yizhan, "stations", "export"], env=env, capture_output=True, timeout=120)
    assert whole.returncode == 0 and len(whole.stdout) > 4 * 65536  # more than a pipe holds
    writer = subprocess.Popen(
        [*yizhan, "stations", "export"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert writer.stdout is not None and writer.stderr is not None
    reader = subprocess.run(
        [sys.executable, "-c", "import sys; print(sys.stdin.readline(), end='')"],
        stdin=writer.stdout,
        capture_output=True,
        timeout=120,
    )
    writer.stdout.close()  # the reader's end is the only one left: it has closed it
    errors = writer.stderr.read().decode()
    status = writer.wait(timeout=120)
    writer.stderr.close()
    assert reader.stdout.decode().lstrip("\ufeff").startswith("code,name,")
    assert status == 1
    assert errors == ""
