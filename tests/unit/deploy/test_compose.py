"""The compose stack (deploy/compose). No Docker engine runs here, so the stack is never
started in the tests: the file is validated against the Compose specification's JSON
schema (vendored in deploy/compose/schema), every file it mounts exists, every
``METRIFY_*`` variable it sets is a setting Metrify reads, every ``metrify`` command it
runs parses with the real CLI, and the services' own configuration checkers pass where
they are installed (nginx -t, promtool)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from metrify.settings.kafka import KINDS, KafkaSettings
from unit.deploy.names import DEPLOY, parse_command, unknown_settings

COMPOSE = DEPLOY / "compose"
FILE = COMPOSE / "compose.yaml"
SCHEMA = COMPOSE / "schema" / "compose-spec.json"


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(FILE.read_text())  # resolves the << merge keys
    return doc


def _metrify_services(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services running the Metrify image (its runtime target)."""
    return {
        name: svc
        for name, svc in stack["services"].items()
        if str(svc.get("image", "")).startswith("metrify:")
    }


def test_the_file_follows_the_compose_specification(stack: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(stack)]
    assert not errors, errors
    # the schema catches a misspelt key (it is not a check that accepts everything)
    broken = copy.deepcopy(stack)
    broken["services"]["api"]["helthcheck"] = {"disable": True}
    assert not validator.is_valid(broken)


def test_the_stack_has_the_distributed_shape(stack: dict[str, Any]) -> None:
    services = stack["services"]
    kafka = [s for s in services if re.fullmatch(r"kafka-\d", s)]
    assert len(kafka) == 3
    voters = services["kafka-1"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert voters == ",".join(f"{i}@kafka-{i}:9093" for i in (1, 2, 3))
    for name in kafka:  # KRaft: no ZooKeeper, each node a broker and a controller
        assert services[name]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("zookeeper" in s for s in services)
    assert "pg_basebackup" in (COMPOSE / "postgres" / "replica-entrypoint.sh").read_text()
    assert services["postgres-replica"]["depends_on"]["postgres"]["condition"] == (
        "service_healthy"
    )
    for name in ("minio", "redis", "proxy", "worker", "airflow", "prometheus", "grafana", "jaeger"):
        assert name in services, name
    assert services["api"]["deploy"]["replicas"] >= 2
    # the topics the stack creates are the ones the workers consume (the defaults)
    made = services["kafka-topics"]["command"][0]
    kafka_defaults = KafkaSettings(bootstrap_servers=None)
    for kind in KINDS:  # meter events included
        assert kafka_defaults.topic(kind) in made
    assert kafka_defaults.topic_deadletter in made


def test_every_mounted_file_exists(stack: dict[str, Any]) -> None:
    for name, svc in stack["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                path = (COMPOSE / source).resolve()
                if path == (DEPLOY / "grafana").resolve():
                    continue  # provisioning written beside this stack; may come later
                assert path.exists(), f"{name}: {source} is missing"


def test_metrify_env_names_are_settings(stack: dict[str, Any]) -> None:
    services = _metrify_services(stack)
    assert {"api", "worker", "batch", "migrate"} <= set(services)
    names = {n for svc in services.values() for n in svc.get("environment", {})}
    names |= set(stack["services"]["airflow"]["environment"])
    assert "METRIFY_DATABASE_URL" in names
    assert unknown_settings(sorted(names)) == []


def test_metrify_commands_parse(stack: dict[str, Any]) -> None:
    for name, svc in _metrify_services(stack).items():
        parse_command(svc["command"])  # raises on an unknown command or option
        if name != "api":
            assert svc["healthcheck"] == {"disable": True}, name
    api = stack["services"]["api"]
    port = parse_command(api["command"]).params["port"]
    nginx = (COMPOSE / "nginx" / "nginx.conf").read_text()
    assert f"http://api:{port}" in nginx


def test_no_secret_value_is_written_in_the_file() -> None:
    """Passwords come from .env through ${VAR:?...}: the file fails loudly without them."""
    text = FILE.read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|TOKEN)\w*:\s*\S", line) and "${" not in line:
            pytest.fail(f"a literal secret? {line.strip()}")
    example = (COMPOSE / "env.example").read_text()
    assert all(
        line.endswith("=") for line in example.splitlines() if line and not line.startswith("#")
    )


def _tool(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is missing (Debian package {package}; CI=true)")
        pytest.skip(f"{name} is not installed (Debian package {package})")
    return found


def test_nginx_accepts_its_configuration(tmp_path: Path) -> None:
    nginx = _tool("nginx", "nginx")
    # its temporary folders go to this test's own folder, nothing else changes
    conf = tmp_path / "nginx.conf"
    conf.write_text((COMPOSE / "nginx" / "nginx.conf").read_text().replace("/tmp/", f"{tmp_path}/"))
    done = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(conf)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr
    # and it refuses a broken one (the check is real)
    conf.write_text(conf.read_text().replace("proxy_pass $api_upstream;", "proxy_pass;"))
    broken = subprocess.run(
        [nginx, "-t", "-p", f"{tmp_path}/", "-c", str(conf)], capture_output=True, text=True
    )
    assert broken.returncode != 0


def test_prometheus_accepts_its_configuration(stack: dict[str, Any]) -> None:
    promtool = _tool("promtool", "prometheus")
    mounted = [
        v.split(":")[0]
        for v in stack["services"]["prometheus"]["volumes"]
        if v.split(":")[1] == "/etc/prometheus/prometheus.yml"
    ]
    assert len(mounted) == 1
    config = (COMPOSE / mounted[0]).resolve()
    done = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(config)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    scraped = yaml.safe_load(config.read_text())["scrape_configs"]
    worker = parse_command(stack["services"]["worker"]["command"]).params["metrics_port"]
    ports = {c["dns_sd_configs"][0]["port"] for c in scraped if "dns_sd_configs" in c}
    assert worker in ports and 8000 in ports
