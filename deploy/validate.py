"""Checks the Kubernetes manifests offline: render every overlay, validate
every object against the Kubernetes JSON schemas shipped in the
kubernetes-validate package (strict: an unknown field is an error).

Usage: python -m deploy.validate [FOLDER ...]   (default: every overlay)
"""

import sys
from pathlib import Path

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from deploy.kustomize import KustomizeError, Object, build

K8S = Path(__file__).parent / "k8s"
# The oldest Kubernetes the manifests must run on (native gRPC probes are GA
# from 1.27); the schemas of this minor version are used.
KUBERNETES_VERSION = "1.31"


def overlays(root: Path = K8S) -> list[Path]:
    """Every overlay folder under root/overlays."""
    return sorted(p for p in (root / "overlays").iterdir() if p.is_dir())


def schema_errors(objects: list[Object]) -> list[str]:
    """One line per object that does not match its Kubernetes schema."""
    errors = []
    for obj in objects:
        what = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            errors.append(f"{what}: {path}: {error.message}")
        except SchemaNotFoundError as error:
            errors.append(f"{what}: {error.message}")
        except (KeyError, TypeError) as error:
            errors.append(f"{what}: not a Kubernetes object ({error})")
    return errors


def check(folder: Path) -> list[str]:
    """Every problem found rendering and validating the kustomization in folder."""
    try:
        objects = build(folder)
    except KustomizeError as error:
        return [str(error)]
    return schema_errors(objects)


def main(argv: list[str]) -> int:
    folders = [Path(a) for a in argv] or overlays()
    failed = False
    for folder in folders:
        errors = check(folder)
        for error in errors:
            sys.stderr.write(f"{folder}: {error}\n")
        failed = failed or bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
