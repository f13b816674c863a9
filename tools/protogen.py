"""Generates the Python code for every proto under protos/ into one package.

Usage: python -m tools.protogen [OUT_DIR]   (default: gen)

The output is committed; tests/test_protos.py fails when running this again
would change it.
"""

import sys
from importlib.resources import files
from pathlib import Path

from google.api import annotations_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    """Writes messages, stubs and typed .pyi stubs for every proto to out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = str(files("grpc_tools").joinpath("_proto"))
    # google/api/annotations.proto and friends ship with googleapis-common-protos.
    googleapis = str(Path(annotations_pb2.__file__).parent.parent.parent)
    bin_dir = Path(sys.executable).parent
    sources = [str(p.relative_to(PROTOS)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"-I{googleapis}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    _add_package_markers(out_dir)


def _add_package_markers(out_dir: Path) -> None:
    # protoc writes modules only; explicit packages keep mypy and tools simple.
    for module in out_dir.rglob("*_pb2.py"):
        folder = module.parent
        while folder != out_dir:
            (folder / "__init__.py").touch()
            folder = folder.parent


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "gen"
    generate(out)


if __name__ == "__main__":
    main()
