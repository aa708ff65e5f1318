"""The deployment files: docker-compose.yml validates and has the services production needs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import IN_CI

ROOT = Path(__file__).resolve().parent.parent


def compose_config() -> str:
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
        env={"PATH": "/usr/bin:/bin", "BOT_TOKEN": "1:x", "WEBHOOK_URL": "https://example.org/webhook"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compose_file_validates_with_every_service() -> None:
    config = compose_config()
    for service in ("postgres:", "redis:", "migrate:", "bot:", "worker:", "proxy:"):
        assert f"  {service}" in config
    assert "replicas: 2" in config
    assert "postgis/postgis" in config
    assert "service_completed_successfully" in config
    assert "REDIS_URL: redis://redis:6379/0" in config


def test_dockerfile_is_multi_stage_non_root_with_compiled_catalogues() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("FROM ") == 2
    assert "pybabel compile" in dockerfile
    assert "USER yizhan" in dockerfile


def test_env_example_documents_every_variable_the_compose_file_reads() -> None:
    import re

    compose = (ROOT / "docker-compose.yml").read_text()
    example = (ROOT / ".env.example").read_text()
    used = set(re.findall(r"\$\{([A-Z_]+)", compose))
    documented = set(re.findall(r"^([A-Z_]+)=", example, flags=re.M))
    assert used <= documented, used - documented
