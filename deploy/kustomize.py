"""A minimal `kustomize build`, enough for deploy/k8s and nothing more.

No kustomize binary ships on PyPI for this machine, and CI must render the
overlays offline, so this implements the few kustomization fields that
deploy/k8s uses, with kustomize's meaning:

- `resources`: YAML files, or folders holding a kustomization.yaml;
- `patches` with a `path` and an optional `target` (by `kind`, and `name`):
  one strategic-merge patch per file, applied to the target's matches, or
  without a target to the object of the patch's own kind and name. Maps
  merge; lists of containers,
  volumes and env merge by name, volumeMounts by mountPath, ports by
  containerPort or port; any other list is replaced; a null removes a key;
- `namespace`: set on every namespaced object;
- `images`: `name` with `newName`, `newTag` or `digest`.

Anything else in a kustomization.yaml is an error rather than silently
ignored, so the manifests cannot drift into features this does not render.
`kubectl apply -k` renders the same folders with the real kustomize.

Usage: python -m deploy.kustomize deploy/k8s/overlays/production
"""

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Object = dict[str, Any]

FIELDS = {"apiVersion", "kind", "resources", "patches", "namespace", "images"}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
}
MERGE_KEYS = {
    "containers": ("name",),
    "initContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "ports": ("containerPort", "port"),
}


class KustomizeError(Exception):
    """A kustomization that this renderer (or kustomize) cannot build."""


def build(folder: Path) -> list[Object]:
    """The objects the kustomization in folder renders to, in order."""
    kustomization = _kustomization(folder)
    objects: list[Object] = []
    for entry in kustomization.get("resources", []):
        objects += _resource(folder / entry)
    for patch in kustomization.get("patches", []):
        _apply_patch_file(objects, folder, patch)
    if "namespace" in kustomization:
        _set_namespace(objects, kustomization["namespace"])
    for image in kustomization.get("images", []):
        _set_image(objects, image)
    _refuse_duplicates(objects)
    return objects


def load_all(path: Path) -> list[Object]:
    """The non-empty YAML documents of a file; each must be a mapping."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as error:
        raise KustomizeError(f"{path}: not valid YAML: {error}") from error
    for document in documents:
        if not isinstance(document, dict):
            raise KustomizeError(f"{path}: a document is not a mapping")
    return documents


def _kustomization(folder: Path) -> Object:
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    (kustomization,) = load_all(path)
    unknown = set(kustomization) - FIELDS
    if unknown:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)}")
    return kustomization


def _resource(path: Path) -> list[Object]:
    if path.is_dir():
        return build(path)
    if not path.is_file():
        raise KustomizeError(f"resource {path} does not exist")
    return load_all(path)


def _apply_patch_file(objects: list[Object], folder: Path, patch: Object) -> None:
    if "path" not in patch or set(patch) - {"path", "target"}:
        raise KustomizeError(f"{folder}: a patch needs a path and only a target")
    path = folder / patch["path"]
    documents = load_all(path)
    if len(documents) != 1:
        # kustomize's `patches` takes one patch per file (patchesStrategicMerge,
        # which took several, is deprecated).
        raise KustomizeError(f"{path}: one patch per file")
    (document,) = documents
    for target in _targets(objects, document, patch.get("target")):
        merged = strategic_merge(target, document)
        merged["metadata"]["name"] = target["metadata"]["name"]
        target.clear()
        target.update(merged)


def _targets(
    objects: list[Object], patch: Object, target: Object | None
) -> list[Object]:
    if target is None:
        target = {
            "kind": patch.get("kind"),
            "name": patch.get("metadata", {}).get("name"),
        }
    elif set(target) - {"kind", "name"}:
        raise KustomizeError(f"unsupported patch target fields {sorted(target)}")
    found = [
        o
        for o in objects
        if o.get("kind") == target.get("kind")
        and target.get("name") in (None, _name(o))
    ]
    if not found:
        raise KustomizeError(
            f"patch target {target.get('kind')}/{target.get('name', '*')} not found"
        )
    return found


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """patch merged into base, as kubectl's strategic merge does for our fields."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value, key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        return _merge_list(base, patch, MERGE_KEYS[field])
    return copy.deepcopy(patch)


def _merge_list(base: list[Any], patch: list[Any], keys: tuple[str, ...]) -> list[Any]:
    merged = copy.deepcopy(base)
    for item in patch:
        key = next((k for k in keys if isinstance(item, dict) and k in item), None)
        if key is None:
            raise KustomizeError(f"a list item in a patch has none of {keys}")
        match = next((m for m in merged if m.get(key) == item[key]), None)
        if match is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[merged.index(match)] = strategic_merge(match, item)
    return merged


def _set_namespace(objects: list[Object], namespace: str) -> None:
    for obj in objects:
        if obj.get("kind") not in CLUSTER_SCOPED:
            obj.setdefault("metadata", {})["namespace"] = namespace


def _set_image(objects: list[Object], image: Object) -> None:
    name = image["name"]
    for container in _containers(objects):
        current = container.get("image", "")
        if _image_name(current) != name:
            continue
        new = str(image.get("newName", name))
        if "digest" in image:
            new += f"@{image['digest']}"
        elif "newTag" in image:
            new += f":{image['newTag']}"
        else:
            new += current[len(_image_name(current)) :]
        container["image"] = new


def _image_name(image: str) -> str:
    # A tag's colon comes after the last slash; a registry port's does not.
    without_digest = image.split("@", 1)[0]
    slash = without_digest.rfind("/")
    colon = without_digest.rfind(":")
    return without_digest[:colon] if colon > slash else without_digest


def pod_spec(obj: Object) -> Object | None:
    """The pod spec inside a workload object, or None for other kinds."""
    spec = obj.get("spec", {})
    if obj.get("kind") == "Pod":
        return spec if isinstance(spec, dict) else None
    if obj.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    pod = spec.get("template", {}).get("spec")
    return pod if isinstance(pod, dict) else None


def _containers(objects: list[Object]) -> list[Object]:
    found = []
    for obj in objects:
        pod = pod_spec(obj) or {}
        found += pod.get("containers", []) + pod.get("initContainers", [])
    return found


def _name(obj: Object) -> str | None:
    name = obj.get("metadata", {}).get("name")
    return name if isinstance(name, str) else None


def _refuse_duplicates(objects: list[Object]) -> None:
    seen = set()
    for obj in objects:
        key = (obj.get("kind"), obj.get("metadata", {}).get("namespace"), _name(obj))
        if key in seen:
            raise KustomizeError(f"{key[0]}/{key[2]} is defined twice")
        seen.add(key)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m deploy.kustomize FOLDER\n")
        return 2
    try:
        objects = build(Path(argv[0]))
    except KustomizeError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
