"""The deployment files: docker-compose.yml validates and has the services production needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent


SECRET = "0123456789abcdef0123456789abcdef"


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        if IN_CI:
            pytest.fail("docker-compose (Debian package) is needed to validate docker-compose.yml")
        pytest.skip("docker-compose is not installed")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "BOT_TOKEN": "1:x", "WEBHOOK_URL": "https://example.org/w", **env},
        check=False,
    )
    return result


def test_compose_file_validates_with_every_service() -> None:
    result = compose_config(WEBHOOK_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    config = result.stdout
    for service in ("postgres:", "redis:", "migrate:", "bot:", "worker:", "proxy:"):
        assert f"  {service}" in config
    assert "replicas: 2" in config
    assert "postgis/postgis" in config
    assert "service_completed_successfully" in config
    assert "REDIS_URL: redis://redis:6379/0" in config
    assert f"WEBHOOK_SECRET: {SECRET}" in config


def test_compose_refuses_to_run_without_a_webhook_secret() -> None:
    for env in ({}, {"WEBHOOK_SECRET": ""}):
        result = compose_config(**env)
        assert result.returncode != 0
        assert "WEBHOOK_SECRET" in result.stderr


def test_env_example_leaves_the_webhook_secret_to_be_set() -> None:
    import re

    example = (ROOT / ".env.example").read_text()
    # A placeholder secret would be accepted and shared by every deployment that forgets to change it.
    assert re.search(r"^WEBHOOK_SECRET=$", example, flags=re.M)
    assert "${WEBHOOK_SECRET:?" in (ROOT / "docker-compose.yml").read_text()


def test_proxy_access_log_keeps_no_query_string() -> None:
    import re

    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    formats = dict(re.findall(r"log_format\s+(\w+)\s+((?:'[^']*'\s*)+);", conf))
    assert formats, "the proxy defines its own access log format"
    logs = re.findall(r"^\s*access_log\s+(\S+)(?:\s+(\w+))?\s*;", conf, flags=re.M)
    assert logs and all(name in formats for _, name in logs), logs
    for name, fmt in formats.items():
        query = ("$request ", '$request"', "$request_uri", "$args", "$arg_", "$query_string", "$is_args")
        for variable in (*query, "$http_referer"):
            assert variable not in fmt, (name, variable)
        assert "$uri" in fmt


def test_dockerfile_is_multi_stage_non_root_and_installs_the_wheel_alone() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line for line in dockerfile.splitlines() if line and not line.startswith(("#", " "))]
    stages = [n for n, line in enumerate(instructions) if line.startswith("FROM ")]
    assert len(stages) == 2
    runtime = instructions[stages[1] :]
    # The runtime stage takes the wheel from the builder and nothing else: the catalogues are inside it.
    assert [line for line in runtime if line.startswith("COPY")] == ["COPY --from=builder /wheels /wheels"]
    assert "pip install --no-cache-dir /wheels/*.whl" in dockerfile
    assert "USER yizhan" in runtime


def test_env_example_documents_every_variable_the_compose_file_reads() -> None:
    import re

    compose = (ROOT / "docker-compose.yml").read_text()
    example = (ROOT / ".env.example").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", compose))
    documented = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert used <= documented, used - documented
