"""The Terraform for AWS (deploy/terraform). ``terraform`` cannot be installed here, so
it is never planned or applied in the tests: every file is parsed with python-hcl2, every
reference is checked against what the files declare (a poor man's ``terraform
validate``), and the facts the platform promises are asserted on the parsed blocks:
encryption at rest and in transit, the read replica, versioning and lifecycle of the
lake, least-privilege IAM. Checkov scans the same files in test_checkov.py."""

from __future__ import annotations

import json
import re
from typing import Any

import hcl2
import pytest
import yaml

from unit.deploy.names import DEPLOY

TF = DEPLOY / "terraform"


def _clean(value: Any) -> Any:
    """python-hcl2 keeps HCL's quotes around strings and block labels: drop them, and
    its bookkeeping keys."""
    if isinstance(value, dict):
        return {
            _clean(k): _clean(v)
            for k, v in value.items()
            if k not in {"__is_block__", "__comments__"}
        }
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _parse() -> dict[str, Any]:
    blocks: dict[str, Any] = {"resource": {}, "data": {}, "variable": {}, "locals": {}}
    for path in sorted(TF.glob("*.tf")):
        with path.open() as handle:
            doc = _clean(hcl2.load(handle))
        for kind in ("resource", "data"):
            for item in doc.get(kind, []):
                for rtype, named in item.items():
                    for name, body in named.items():
                        assert (rtype, name) not in blocks[kind], f"{rtype}.{name} twice"
                        blocks[kind][(rtype, name)] = body
        for item in doc.get("variable", []):
            blocks["variable"].update(item)
        for item in doc.get("locals", []):
            blocks["locals"].update(item)
    return blocks


@pytest.fixture(scope="module")
def tf() -> dict[str, Any]:
    return _parse()


def _res(tf: dict[str, Any], rtype: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = tf["resource"][(rtype, name)]
    return body


def _first(block: Any) -> dict[str, Any]:
    """A nested block: python-hcl2 gives a list of one."""
    return block[0] if isinstance(block, list) else block  # type: ignore[no-any-return]


def test_every_reference_is_declared(tf: dict[str, Any]) -> None:
    text = json.dumps(
        {str(k): v for kind in ("resource", "data", "locals") for k, v in tf[kind].items()}
    )
    text += json.dumps([v.get("default") for v in tf["variable"].values()])
    resource = re.compile(r"(?<![\w.])((?:aws|random|tls)_[a-z0-9_]+)\.([a-z0-9_]+)\b")
    for rtype, name in resource.findall(text):
        # data sources are written data.TYPE.NAME: look behind for it
        if (rtype, name) not in tf["resource"]:
            assert f"data.{rtype}.{name}" in text, f"{rtype}.{name} is not declared"
    for rtype, name in re.findall(r"\bdata\.([a-z0-9_]+)\.([a-z0-9_]+)", text):
        assert (rtype, name) in tf["data"], f"data.{rtype}.{name} is not declared"
    for name in re.findall(r"\bvar\.([a-z0-9_]+)", text):
        assert name in tf["variable"], f"var.{name} is not declared"
    for name in re.findall(r"\blocal\.([a-z0-9_]+)", text):
        assert name in tf["locals"], f"local.{name} is not declared"
    for name, variable in tf["variable"].items():
        assert variable.get("description"), f"variable {name} has no description"


def test_the_lake_is_encrypted_versioned_and_cooled(tf: dict[str, Any]) -> None:
    sse = _res(tf, "aws_s3_bucket_server_side_encryption_configuration", "lake")
    default = _first(_first(sse["rule"])["apply_server_side_encryption_by_default"])
    assert default["sse_algorithm"] == "aws:kms"
    assert default["kms_master_key_id"] == "${aws_kms_key.lake.arn}"
    assert _first(sse["rule"])["bucket_key_enabled"] is True
    versioning = _res(tf, "aws_s3_bucket_versioning", "lake")
    assert _first(versioning["versioning_configuration"])["status"] == "Enabled"
    rules = _res(tf, "aws_s3_bucket_lifecycle_configuration", "lake")["rule"]
    assert all(r["status"] == "Enabled" for r in rules)
    assert any("transition" in r for r in rules)
    assert any("noncurrent_version_expiration" in r for r in rules)
    assert any("abort_incomplete_multipart_upload" in r for r in rules)
    block = _res(tf, "aws_s3_bucket_public_access_block", "lake")
    assert all(
        block[k] is True
        for k in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    )


def test_postgres_has_an_encrypted_multi_az_primary_and_a_read_replica(
    tf: dict[str, Any],
) -> None:
    primary = _res(tf, "aws_db_instance", "primary")
    replica = _res(tf, "aws_db_instance", "replica")
    assert primary["engine"] == "postgres"
    assert replica["replicate_source_db"] == "${aws_db_instance.primary.identifier}"
    for db in (primary, replica):
        assert db["storage_encrypted"] is True
        assert db["kms_key_id"] == "${aws_kms_key.data.arn}"
        assert db["publicly_accessible"] is False
        assert db["parameter_group_name"] == "${aws_db_parameter_group.postgres.name}"
    assert primary["multi_az"] is True and primary["deletion_protection"] is True
    assert primary["backup_retention_period"] >= 7
    assert primary["manage_master_user_password"] is True  # no password in the files
    params = {
        p["name"]: p["value"] for p in _res(tf, "aws_db_parameter_group", "postgres")["parameter"]
    }
    assert params["rds.force_ssl"] == "1"


def test_kafka_redis_and_kubernetes_encrypt_at_rest_and_in_transit(tf: dict[str, Any]) -> None:
    msk = _res(tf, "aws_msk_cluster", "main")
    assert msk["number_of_broker_nodes"] == 3
    encryption = _first(msk["encryption_info"])
    assert encryption["encryption_at_rest_kms_key_arn"] == "${aws_kms_key.data.arn}"
    transit = _first(encryption["encryption_in_transit"])
    assert transit["client_broker"] == "TLS" and transit["in_cluster"] is True
    auth = _first(msk["client_authentication"])
    assert auth["unauthenticated"] is False and _first(auth["sasl"])["scram"] is True
    properties = _res(tf, "aws_msk_configuration", "main")["server_properties"]
    assert "min.insync.replicas=2" in properties
    assert "unclean.leader.election.enable=false" in properties

    redis = _res(tf, "aws_elasticache_replication_group", "main")
    assert redis["at_rest_encryption_enabled"] is True
    assert redis["transit_encryption_enabled"] is True
    assert redis["automatic_failover_enabled"] is True and redis["num_cache_clusters"] >= 2

    eks = _res(tf, "aws_eks_cluster", "main")
    assert _first(eks["encryption_config"])["resources"] == ["secrets"]
    assert _first(eks["vpc_config"])["endpoint_private_access"] is True
    assert "audit" in eks["enabled_cluster_log_types"]
    metadata = _first(_res(tf, "aws_launch_template", "node")["metadata_options"])
    assert metadata["http_tokens"] == "required"
    assert metadata["http_put_response_hop_limit"] == 1

    keys = [body for (rtype, _), body in tf["resource"].items() if rtype == "aws_kms_key"]
    assert len(keys) >= 2 and all(k["enable_key_rotation"] is True for k in keys)


def _wildcard_allows(statements: list[dict[str, Any]]) -> list[str]:
    """Actions with a wildcard in statements that allow (a Deny with one only refuses)."""
    found = []
    for statement in statements:
        if statement.get("effect", "Allow") == "Deny":
            continue
        found += [a for a in statement.get("actions", []) if "*" in str(a)]
        assert "not_actions" not in statement  # "all but" is a wildcard too
    return found


def test_no_iam_statement_allows_a_wildcard_action(tf: dict[str, Any]) -> None:
    documents = [
        (name, body)
        for (rtype, name), body in tf["data"].items()
        if rtype == "aws_iam_policy_document"
    ]
    assert len(documents) >= 8
    for name, body in documents:
        statements = body["statement"]
        assert not _wildcard_allows(statements), name
    # policies are documents, never hand-written JSON (which this check could not read)
    for (rtype, _name), body in tf["resource"].items():
        if rtype in {"aws_iam_policy", "aws_iam_role_policy", "aws_s3_bucket_policy"}:
            assert str(body["policy"]).startswith("${data.aws_iam_policy_document."), rtype
    # the check itself finds what it is for
    assert _wildcard_allows([{"actions": ["s3:*"]}, {"effect": "Deny", "actions": ["s3:*"]}]) == [
        "s3:*"
    ]


def test_the_app_role_fits_the_kubernetes_service_account(tf: dict[str, Any]) -> None:
    """IRSA: the role trusts exactly the prod overlay's namespace and service account, and
    the overlay's egress policy names the VPC's range."""
    overlay = yaml.safe_load(
        (DEPLOY / "k8s" / "overlays" / "prod" / "kustomization.yaml").read_text()
    )
    account = yaml.safe_load((DEPLOY / "k8s" / "base" / "serviceaccount.yaml").read_text())
    assert tf["variable"]["k8s_namespace"]["default"] == overlay["namespace"]
    assert tf["variable"]["k8s_service_account"]["default"] == account["metadata"]["name"]
    patches = yaml.dump(overlay["patches"])
    assert tf["variable"]["vpc_cidr"]["default"] in patches
    app = tf["data"][("aws_iam_policy_document", "app")]["statement"]
    resources = {r for s in app for r in s["resources"]}
    assert resources == {
        "${aws_s3_bucket.lake.arn}",
        "${aws_s3_bucket.lake.arn}/lake/*",
        "${aws_kms_key.lake.arn}",
    }


def test_every_checkov_skip_says_why() -> None:
    skips = [
        line.strip()
        for path in TF.glob("*.tf")
        for line in path.read_text().splitlines()
        if "checkov:skip=" in line
    ]
    assert skips
    for skip in skips:
        _, _, reason = skip.partition("checkov:skip=")[2].partition(":")
        assert len(reason.split()) >= 5, f"give the reason: {skip}"
