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


async def test_the_proxy_logs_a_search_without_its_position(tmp_path: Path) -> None:
    """deploy/nginx.conf run by a real nginx in front of a stand-in replica: the access log line of a
    search names its path, never the query string or referer that carry the rider's position."""
    import asyncio
    import socket

    import aiohttp
    from aiohttp import web

    binary = shutil.which("nginx", path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    if binary is None:
        if IN_CI:
            pytest.fail("nginx is needed to check deploy/nginx.conf")
        pytest.skip("nginx is not installed")

    async def replica(request: web.Request) -> web.Response:
        return web.json_response({"results": []})

    app = web.Application()
    app.router.add_get("/api/v1/stations/nearby", replica)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    backend = runner.addresses[0][1]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    access = tmp_path / "access.log"
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    for deployed, here in (
        ("server bot:8080", f"server 127.0.0.1:{backend}"),
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("/var/log/nginx/access.log", str(access)),
    ):
        assert deployed in site
        site = site.replace(deployed, here)
    (tmp_path / "default.conf").write_text(site)
    temp = "\n".join(
        f"{kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"daemon off; master_process off; pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{\n{temp}\ninclude {tmp_path / 'default.conf'};\n}}\n"
    )
    nginx = await asyncio.create_subprocess_exec(
        binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), stderr=asyncio.subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/stations/nearby?lat=23.139876&lon=113.269876&k=5"
        headers = {"Referer": "https://h5.example.org/?lat=23.139876&lon=113.269876"}
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(url, headers=headers) as response:
                        assert response.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.025)
            else:
                pytest.fail(f"nginx did not start: {(tmp_path / 'error.log').read_text()}")
        for _ in range(200):
            if access.exists() and access.read_text():
                break
            await asyncio.sleep(0.01)
    finally:
        nginx.terminate()
        await nginx.wait()
        await runner.cleanup()
    line = access.read_text()
    assert 'GET /api/v1/stations/nearby HTTP/1.1" 200' in line, line
    assert "23.13" not in line and "113.26" not in line and "lat=" not in line, line


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    """deploy/nginx.conf as the proxy container includes it (inside `http`), with the replicas' Docker name
    replaced by an address (nginx -t resolves upstream names) and every path nginx writes in `tmp_path`."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if binary is None:
        if IN_CI:
            pytest.fail("nginx (Debian package) is needed to check deploy/nginx.conf")
        pytest.skip("nginx is not installed")
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server bot:8080" in site
    (tmp_path / "default.conf").write_text(site.replace("server bot:8080", "server 127.0.0.1:8080"))
    temp = "\n".join(
        f"    {kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\nevents {{}}\n"
        f"http {{\n{temp}\n    include {tmp_path / 'default.conf'};\n}}\n"
    )
    result = subprocess.run(
        [
            binary,
            "-t",
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "error.log"),
            "-c",
            str(tmp_path / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_limits_rates_times_out_slow_clients_and_caches_versioned_files() -> None:
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    for directive in (
        "limit_req_zone",
        "limit_req zone=yizhan_api",
        "limit_req_status 429",
        "client_header_timeout",
        "client_body_timeout",
        "gzip on",
    ):
        assert directive in site, directive
    # Only the replicas know which `v` is current (tests/test_h5_assets.py): their Cache-Control stands.
    static = site[site.index("location /h5/") :].split("}")[0]
    assert "proxy_hide_header Cache-Control" not in static and "add_header Cache-Control" not in static


def test_compose_trusts_the_proxy_for_client_addresses() -> None:
    result = compose_config(WEBHOOK_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    assert "TRUSTED_PROXIES: 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16" in result.stdout
