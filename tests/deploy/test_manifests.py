"""The Kubernetes manifests: every overlay renders, validates against the
Kubernetes schemas, and keeps the promises the README makes about it."""

import importlib.util
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.kustomize import KustomizeError, Object, build, pod_spec, strategic_merge
from deploy.validate import K8S, check, overlays, schema_errors
from services.common.config import ROOT, SERVICE_PORTS

OVERLAYS = overlays()


def rendered(overlay: Path) -> list[Object]:
    return build(overlay)


def of_kind(objects: list[Object], kind: str) -> dict[str, Object]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def containers(obj: Object) -> list[Object]:
    pod = pod_spec(obj)
    assert pod is not None
    found: list[Object] = pod["containers"]
    return found


@pytest.fixture(params=OVERLAYS, ids=[p.name for p in OVERLAYS])
def objects(request: pytest.FixtureRequest) -> list[Object]:
    overlay: Path = request.param
    return rendered(overlay)


def test_there_are_staging_and_production_overlays() -> None:
    assert {p.name for p in OVERLAYS} == {"staging", "production"}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
def test_overlay_renders_and_matches_the_kubernetes_schemas(overlay: Path) -> None:
    assert check(overlay) == []


def test_every_grpc_service_has_a_deployment_service_and_autoscaler(
    objects: list[Object],
) -> None:
    deployments = of_kind(objects, "Deployment")
    services = of_kind(objects, "Service")
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")

    for name, port in SERVICE_PORTS.items():
        (container,) = containers(deployments[name])
        assert container["command"] == ["python", "-m", f"services.{name}.server"]
        assert container["ports"][0]["containerPort"] == port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == port
        assert services[name]["spec"]["ports"][0]["port"] == port
        assert autoscalers[name]["spec"]["scaleTargetRef"]["name"] == name
    assert {"worker", "gateway"} <= set(autoscalers)


def test_autoscalers_target_deployments_that_exist(objects: list[Object]) -> None:
    deployments = of_kind(objects, "Deployment")

    for hpa in of_kind(objects, "HorizontalPodAutoscaler").values():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"]["name"] in deployments
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]


def test_every_workload_runs_non_root_on_a_read_only_root(
    objects: list[Object],
) -> None:
    workloads = [o for o in objects if pod_spec(o) is not None]
    assert workloads

    for workload in workloads:
        pod = pod_spec(workload)
        assert pod is not None
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= set(container["resources"])


def test_every_command_runs_a_module_that_exists(
    objects: list[Object],
) -> None:
    for workload in objects:
        if pod_spec(workload) is None:
            continue
        for container in containers(workload):
            python, flag, module = container["command"]
            assert (python, flag) == ("python", "-m")
            assert importlib.util.find_spec(module), module


def readme_variables() -> list[str]:
    """The variable names of the README's configuration table, as patterns."""
    section = (ROOT / "README.md").read_text().split("## Configuration", 1)[1]
    return re.findall(r"^\| `([A-Z_<>]+)`", section, flags=re.MULTILINE)


def is_documented(key: str, documented: list[str]) -> bool:
    for name in documented:
        pattern = re.escape(name).replace(re.escape("<SERVICE>"), "[A-Z]+")
        if re.fullmatch(pattern, key):
            return True
    # `CLOUDARK_DB_POOL_MIN` / `_MAX` share a row; OTLP settings are standard.
    return key == "CLOUDARK_DB_POOL_MAX" or key.startswith("OTEL_EXPORTER_OTLP_")


def test_configmap_holds_only_readme_keys_with_production_values(
    objects: list[Object],
) -> None:
    data = of_kind(objects, "ConfigMap")["cloudark-config"]["data"]
    documented = readme_variables()

    assert [k for k in data if not is_documented(k, documented)] == []
    assert data["CLOUDARK_BIND_HOST"] == "0.0.0.0"
    assert data["CLOUDARK_MIGRATE_ON_START"] == "false"
    assert "DATABASE_URL" not in data
    for name, port in SERVICE_PORTS.items():
        assert data[f"CLOUDARK_{name.upper()}_ADDRESS"] == f"{name}:{port}"


def test_database_url_comes_from_a_secret(objects: list[Object]) -> None:
    for workload in objects:
        if pod_spec(workload) is None:
            continue
        for container in containers(workload):
            env = {e["name"]: e for e in container.get("env", [])}
            if "DATABASE_URL" in env:
                ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": "cloudark-database", "key": "DATABASE_URL"}


def test_migration_job_runs_the_migrate_cli(objects: list[Object]) -> None:
    job = of_kind(objects, "Job")["migrate"]

    (container,) = containers(job)
    assert container["command"] == ["python", "-m", "services.common.migrate"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels", {})
    return all(labels.get(k) == v for k, v in wanted.items())


def pod_labels(objects: list[Object]) -> dict[str, dict[str, str]]:
    return {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in objects
        if o["kind"] == "Deployment"
    }


def test_grpc_services_admit_only_our_callers_and_government_systems(
    objects: list[Object],
) -> None:
    policy = of_kind(objects, "NetworkPolicy")["grpc-services"]
    labels = pod_labels(objects)
    (rule,) = policy["spec"]["ingress"]
    pod_peers = [p["podSelector"] for p in rule["from"] if "podSelector" in p]
    namespace_peers = [
        p["namespaceSelector"] for p in rule["from"] if "namespaceSelector" in p
    ]

    target = policy["spec"]["podSelector"]
    guarded = {name for name, pod in labels.items() if selects(target, pod)}
    callers = {
        name
        for name, pod in labels.items()
        if any(selects(peer, pod) for peer in pod_peers)
    }
    assert guarded == set(SERVICE_PORTS)
    # Every service but grids calls another service (residents finds areas
    # in grids, front doors call the services they coordinate).
    assert callers == {"gateway", "worker", *SERVICE_PORTS} - {"grids"}
    assert namespace_peers == [
        {"matchLabels": {"cloudark.io/access": "government-systems"}}
    ]
    assert {p["port"] for p in rule["ports"]} == set(SERVICE_PORTS.values())
    default_deny = of_kind(objects, "NetworkPolicy")["default-deny-ingress"]
    assert default_deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}


def test_overlays_pin_the_image_and_their_own_namespace(objects: list[Object]) -> None:
    namespaces = {o["metadata"].get("namespace") for o in objects}
    images = {
        c["image"] for o in objects if pod_spec(o) is not None for c in containers(o)
    }

    assert len(namespaces) == 1
    assert None not in namespaces
    assert len(images) == 1
    assert re.fullmatch(r"[\w./-]+/cloudark:[\w.-]+", images.pop())


def test_production_worker_gets_its_larger_resources() -> None:
    objects = rendered(K8S / "overlays" / "production")
    (worker,) = containers(of_kind(objects, "Deployment")["worker"])

    assert worker["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert worker["command"] == ["python", "-m", "workflows.worker"]


@pytest.fixture
def k8s_copy(tmp_path: Path) -> Path:
    """A copy of deploy/k8s to break."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_misspelt_field_in_the_base_fails_validation(k8s_copy: Path) -> None:
    edit(k8s_copy / "base" / "grids.yaml", "revisionHistoryLimit", "revisionLimit")

    errors = check(k8s_copy / "overlays" / "production")

    assert any("Deployment/grids" in e and "revisionLimit" in e for e in errors)


def test_an_overlay_patch_of_the_wrong_type_fails_validation(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "overlays" / "staging" / "autoscaling.yaml",
        "maxReplicas: 2",
        "maxReplicas: two",
    )

    errors = check(k8s_copy / "overlays" / "staging")

    assert any("maxReplicas" in e and "integer" in e for e in errors)


def test_an_overlay_patch_of_a_missing_object_fails_rendering(k8s_copy: Path) -> None:
    edit(
        k8s_copy / "overlays" / "production" / "worker.yaml",
        "name: worker",
        "name: wrker",
    )

    assert check(k8s_copy / "overlays" / "production") == [
        "patch target Deployment/wrker not found"
    ]


def test_an_unsupported_kustomize_field_is_refused(k8s_copy: Path) -> None:
    path = k8s_copy / "overlays" / "staging" / "kustomization.yaml"
    path.write_text(path.read_text() + "commonLabels:\n  team: ark\n")

    with pytest.raises(KustomizeError, match="commonLabels"):
        build(path.parent)


def test_an_object_of_an_unknown_api_version_fails_validation() -> None:
    errors = schema_errors([{"apiVersion": "v1", "kind": "Deployment", "metadata": {}}])

    assert len(errors) == 1
    assert "Deployment" in errors[0]


def test_strategic_merge_merges_containers_by_name_and_replaces_other_lists() -> None:
    base = {
        "containers": [{"name": "a", "image": "x", "args": ["1", "2"]}, {"name": "b"}],
        "tolerations": [{"key": "k"}],
    }
    patch = {
        "containers": [{"name": "a", "args": ["3"]}, {"name": "c"}],
        "tolerations": [{"key": "z"}],
    }

    merged = strategic_merge(base, patch)

    assert merged == {
        "containers": [
            {"name": "a", "image": "x", "args": ["3"]},
            {"name": "b"},
            {"name": "c"},
        ],
        "tolerations": [{"key": "z"}],
    }


def test_kustomizations_are_plain_kustomize_files() -> None:
    for path in K8S.rglob("kustomization.yaml"):
        document = yaml.safe_load(path.read_text())
        assert document["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
        assert document["kind"] == "Kustomization"


def test_production_bounds_apply_to_every_autoscaler_and_the_worker_grows_most() -> (
    None
):
    objects = rendered(K8S / "overlays" / "production")
    bounds = {
        name: (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"])
        for name, hpa in of_kind(objects, "HorizontalPodAutoscaler").items()
    }

    assert bounds.pop("worker") == (3, 20)
    assert set(bounds.values()) == {(3, 12)}


def test_a_patch_file_with_two_patches_is_refused(k8s_copy: Path) -> None:
    path = k8s_copy / "overlays" / "production" / "worker-autoscaling.yaml"
    path.write_text(path.read_text() + "---\n" + path.read_text())

    with pytest.raises(KustomizeError, match="one patch per file"):
        build(path.parent)
