"""The deployment files: compose services, health checks, environment; the image's user and health check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from .helpers import REPO

COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _healthcheck_code(test: list[str]) -> str:
    assert test[:3] == ["CMD", "python", "-c"], test
    return test[3]


SCALEOUT = {"ingest-0", "ingest-1", "api-replica-0", "api-replica-1", "storage-consumer"}


def test_compose_has_the_four_services_with_health_checks(compose):
    services = compose["services"]
    assert {n for n, s in services.items() if not s.get("profiles")} == {
        "api",
        "frontend",
        "redis",
        "postgres",
    }
    # docs/scaleout.md: 2 ingest workers + 2 API replicas + a storage consumer, only on request.
    assert {n for n, s in services.items() if s.get("profiles")} == SCALEOUT
    assert all(services[n]["profiles"] == ["scaleout"] for n in SCALEOUT)
    assert [services[f"ingest-{i}"]["environment"]["SHARD"] for i in range(2)] == ["0/2", "1/2"]
    for n in ("api-replica-0", "api-replica-1"):
        assert "mlm serve --bus redis://redis:6379/0" in services[n]["command"][2]
    for name, svc in services.items():
        hc = svc.get("healthcheck")
        assert hc and hc["test"], f"{name} has no healthcheck"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "/api/health" in _healthcheck_code(services["api"]["healthcheck"]["test"])
    assert "/_stcore/health" in _healthcheck_code(services["frontend"]["healthcheck"]["test"])
    for name in ("api", "frontend", *SCALEOUT):  # the one-liners are valid Python
        compile(_healthcheck_code(services[name]["healthcheck"]["test"]), name, "exec")


def test_compose_startup_order_volumes_and_environment(compose):
    s = compose["services"]
    assert s["api"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert s["frontend"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    # Settings come from .env, to the api only; the frontend gets the API address and token.
    assert s["api"]["env_file"] == ".env"
    assert "env_file" not in s["frontend"]
    assert s["frontend"]["environment"] == {
        "MLM_API_URL": "http://api:8000",
        "MLM_API__TOKEN": "${MLM_API__TOKEN:-}",
    }
    env = s["api"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://mlm:") and env["DATABASE_URL"].endswith(
        "@postgres:5432/mlm"
    )
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert "mlm-data:/app/data" in s["api"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in s["postgres"]["volumes"]
    assert {"mlm-data", "postgres-data"} <= set(compose["volumes"])
    # Published on loopback unless PUBLISH_ADDRESS says otherwise; the databases not at all.
    for name in ("api", "frontend"):
        assert all(p.startswith("${PUBLISH_ADDRESS:-127.0.0.1}:") for p in s[name]["ports"])
    assert "ports" not in s["redis"] and "ports" not in s["postgres"]


def test_dockerfile_is_multi_stage_non_root_with_a_health_check(compose):
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, flags=re.M)
    assert stages == ["builder", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER mlm$", runtime, flags=re.M)
    assert "useradd --system --uid 10001" in runtime
    m = re.search(r"^HEALTHCHECK [^\n]*\\\n\s+CMD (\[[^\n]*\])$", runtime, flags=re.M)
    assert m, "no HEALTHCHECK in the runtime stage"
    cmd = json.loads(m.group(1))
    # The same check as the compose api service (which spells it out).
    assert cmd == compose["services"]["api"]["healthcheck"]["test"][1:]


def test_compose_file_validates_with_docker_compose(tmp_path):
    """`docker compose config` (v2 plugin) or `docker-compose config` (v1), when installed."""
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        cmd = ["docker", "compose", "config", "-q"]
    elif shutil.which("docker-compose"):
        cmd = ["docker-compose", "config", "-q"]
    else:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed")
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
