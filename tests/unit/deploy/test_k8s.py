"""The Kubernetes manifests (deploy/k8s): each overlay rendered with ``kubectl kustomize``
and validated against the Kubernetes API schemas that ``kubernetes-validate`` ships
(offline, strict: an unknown field fails). KEDA's ScaledObject and TriggerAuthentication
and the External Secrets Operator's ExternalSecret are custom resources with no schema
there: they are validated against their own CRDs' schemas (vendored in deploy/k8s/crds),
as strictly, and their facts asserted below. Checkov scans the same rendered output in
test_checkov.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from metrify.api.routers.ops import router as ops_router
from unit.deploy.names import DEPLOY, parse_command, unknown_settings

K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
#: the EKS version of deploy/terraform (variables.tf, eks_version)
KUBERNETES = "1.33.0"
#: custom resources: no schema in kubernetes-validate; their CRDs are in deploy/k8s/crds
CUSTOM = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("external-secrets.io/v1", "ExternalSecret"),
}


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI schema of a CRD with every object closed to its declared properties,
    which is what the API server's field validation (kubectl's default, strict) does;
    objects that keep unknown fields on purpose stay open."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: _closed(v) for k, v in out["properties"].items()}
        if "additionalProperties" not in out and not out.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _closed(out[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in out:
            out[key] = [_closed(s) for s in out[key]]
    return out


def crd_schemas() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """(apiVersion, kind) -> a validator of its served version's schema."""
    validators = {}
    for path in sorted((K8S / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schema = _closed(version["schema"]["openAPIV3Schema"])
                # metadata is the API server's ObjectMeta, checked by it, not the CRD
                schema["properties"]["metadata"] = {"type": "object"}
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(
                    schema
                )
    return validators


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is missing (Debian package kubectl; CI=true)")
        pytest.skip("kubectl is not installed")
    done = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        spec: dict[str, Any] = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return spec
    pod: dict[str, Any] = doc["spec"]["template"]["spec"]
    return pod


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in {"Deployment", "CronJob", "Job"}]


def test_rendered_objects_match_the_kubernetes_schemas(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    overlay, docs = rendered
    custom = crd_schemas()
    assert set(custom) >= CUSTOM
    seen = set()
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        if key in CUSTOM:
            seen.add(key)
            errors = [f"{list(e.path)}: {e.message}" for e in custom[key].iter_errors(doc)]
            assert not errors, f"{where}: {errors}"
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {exc.message}")
    assert ("keda.sh/v1alpha1", "ScaledObject") in seen
    # the CRD check is as strict: a misspelt trigger field fails it
    scaled = _one(docs, "ScaledObject", "metrify-worker")
    wrong = {**scaled, "spec": {**scaled["spec"], "maxReplicas": 3}}
    assert not custom[("keda.sh/v1alpha1", "ScaledObject")].is_valid(wrong)
    # strict validation is real: a misspelt field fails
    broken = _one(docs, "Deployment", "metrify-api")
    broken = {**broken, "spec": {**broken["spec"], "replica": 3}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)


def test_probes_use_routes_the_api_has(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    routes = {route.path for route in ops_router.routes}  # type: ignore[attr-defined]
    container = _pod(_one(docs, "Deployment", "metrify-api"))["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes
    port = parse_command(container["args"]).params["port"]
    assert container["ports"][0]["containerPort"] == port


def test_api_scaling_and_disruption(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    api = _one(docs, "Deployment", "metrify-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    hpa = _one(docs, "HorizontalPodAutoscaler", "metrify-api")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "metrify-api"
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdb = _one(docs, "PodDisruptionBudget", "metrify-api")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # a PDB that always forbids eviction would block every node drain
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    service = _one(docs, "Service", "metrify-api")
    assert service["spec"]["selector"].items() <= labels.items()
    # SIGTERM: the pause before it plus uvicorn's own timeout fit in the grace period
    container = _pod(api)["containers"][0]
    shutdown = parse_command(container["args"]).params["shutdown_timeout"]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pause + shutdown < _pod(api)["terminationGracePeriodSeconds"]


def test_workers_scale_on_their_consumer_groups_lag(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, docs = rendered
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    scaled = _one(docs, "ScaledObject", "metrify-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "metrify-worker"
    _one(docs, "Deployment", "metrify-worker")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == config["METRIFY_KAFKA_GROUP_ID"]
    assert trigger["metadata"]["bootstrapServers"] == config["METRIFY_KAFKA_BOOTSTRAP_SERVERS"]
    assert int(trigger["metadata"]["lagThreshold"]) > 0
    if config.get("METRIFY_KAFKA_SECURITY_PROTOCOL") == "SASL_SSL":
        assert trigger["metadata"]["tls"] == "enable"
        assert trigger["metadata"]["sasl"] == "scram_sha512"
        auth = _one(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        keys = {ref["key"] for ref in auth["spec"]["secretTargetRef"]}
        assert keys == {"METRIFY_KAFKA_SASL_USERNAME", "METRIFY_KAFKA_SASL_PASSWORD"}


def test_batch_runs_yesterday_daily(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    cron = _one(docs, "CronJob", "metrify-batch")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["timeZone"] == "Etc/UTC"
    args = _pod(cron)["containers"][0]["args"]
    assert args[:2] == ["batch", "run"]
    assert parse_command(args).params["date"] == "yesterday"


def test_commands_and_settings_are_real(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    names = set(next(d for d in docs if d["kind"] == "ConfigMap")["data"])
    for secret in (d for d in docs if d["kind"] == "ExternalSecret"):
        names |= {item["secretKey"] for item in secret["spec"]["data"]}
    assert unknown_settings(sorted(names)) == []
    for workload in _workloads(docs):
        for container in _pod(workload)["containers"]:
            parse_command(container["args"])


def test_secrets_are_referenced_never_written(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, docs = rendered
    assert not [d for d in docs if d["kind"] == "Secret"], "a Secret with values in the repo"
    referenced = {
        ref["secretRef"]["name"]
        for workload in _workloads(docs)
        for container in _pod(workload)["containers"]
        for ref in container.get("envFrom", [])
        if "secretRef" in ref
    }
    assert referenced == {"metrify-secrets", "metrify-migrate-secrets"}
    if overlay == "prod":  # filled by the External Secrets Operator
        made = {d["spec"]["target"]["name"] for d in docs if d["kind"] == "ExternalSecret"}
        assert made == referenced
    # only the migration holds the owner's URL
    for workload in _workloads(docs):
        refs = {
            r["secretRef"]["name"]
            for r in _pod(workload)["containers"][0]["envFrom"]
            if "secretRef" in r
        }
        if workload["metadata"]["name"] != "metrify-migrate":
            assert "metrify-migrate-secrets" not in refs


def test_pods_are_locked_down(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    for workload in _workloads(docs):
        pod = _pod(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["limits"]["memory"]


def test_network_is_denied_unless_allowed(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    deny = _one(docs, "NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    egress = _one(docs, "NetworkPolicy", "metrify-egress")["spec"]["egress"]
    https = [rule for rule in egress if {"port": 443, "protocol": "TCP"} in rule["ports"]]
    assert https and "169.254.169.254/32" in https[0]["to"][0]["ipBlock"]["except"]
    ingress = _one(docs, "NetworkPolicy", "metrify-api-ingress")["spec"]["ingress"]
    assert [p["port"] for rule in ingress for p in rule["ports"]] == [8000]
