"""The container image's recipe. No container engine runs here, so the
Dockerfile is parsed and its promises checked; see deploy/README.md, Limits."""

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from services.common.config import ROOT, SERVICE_PORTS

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "Dockerfile.dockerignore"


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [v for i, v in self.instructions if i == instruction]


def stages() -> list[Stage]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    found: list[Stage] = []
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            base, _, name = value.partition(" AS ")
            found.append(Stage(base.strip(), name.strip()))
        elif found:
            found[-1].instructions.append((instruction, value))
    return found


def stage(name: str) -> Stage:
    (found,) = [s for s in stages() if s.name == name]
    return found


def build_args() -> dict[str, str]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    args = [i["value"] for i in parser.structure if i["instruction"] == "ARG"]
    return dict(a.split("=", 1) for a in args)


def test_builder_and_runtime_start_from_python_3_11_slim() -> None:
    assert build_args()["PYTHON_IMAGE"] == "python:3.11-slim"
    assert stage("builder").base == "${PYTHON_IMAGE}"
    assert stage("runtime").base == "${PYTHON_IMAGE}"


def test_builder_installs_the_locked_runtime_dependencies_only() -> None:
    builder = stage("builder")
    runs = " ".join(builder.values("RUN"))

    assert "uv.lock" in " ".join(builder.values("COPY"))
    assert "uv sync --frozen --no-default-groups" in runs
    assert "--group" not in runs.replace("--no-default-groups", "")
    assert "--all-groups" not in runs


def test_builder_uses_the_makefiles_uv() -> None:
    pinned = re.search(r"uv==[\d.]+", (ROOT / "Makefile").read_text())
    assert pinned is not None

    assert pinned.group() in " ".join(stage("builder").values("RUN"))


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    allowed = [
        line[1:].rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    ]
    sources = []
    for s in stages():
        for value in s.values("COPY"):
            words = [w for w in shlex.split(value) if not w.startswith("--")]
            if "--from=" not in value:
                sources += words[:-1]

    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in allowed, source


def test_runtime_runs_as_a_numeric_non_root_user_with_a_health_check() -> None:
    runtime = stage("runtime")
    (user,) = runtime.values("USER")
    uid = user.split(":")[0]
    (check,) = runtime.values("HEALTHCHECK")

    assert uid.isdigit()
    assert int(uid) != 0
    assert "python -m services.common.healthcheck" in check
    assert "PYTHONPATH=/app:/app/gen" in " ".join(runtime.values("ENV"))


def test_each_role_target_runs_a_real_module_and_probes_its_port() -> None:
    roles = {s.name: s for s in stages() if s.base == "runtime" and s.name}

    assert set(roles) >= {*SERVICE_PORTS, "gateway", "worker", "migrate"}
    for name, role in roles.items():
        (cmd,) = role.values("CMD")
        python, flag, module = json.loads(cmd)
        assert (python, flag) == ("python", "-m")
        assert (ROOT / module.replace(".", "/")).with_suffix(".py").exists(), module
        if name in SERVICE_PORTS:
            target = f"CLOUDARK_HEALTH_TARGET=127.0.0.1:{SERVICE_PORTS[name]}"
            assert target in role.values("ENV")


def test_the_copied_folders_alone_run_every_role(tmp_path: Path) -> None:
    # What the image holds: gen/, services/ and workflows/ on PYTHONPATH.
    for folder in ("gen", "services", "workflows"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    modules = ["services.grids.server", "workflows.worker"]
    modules += ["services.common.migrate", "services.common.healthcheck"]
    program = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('\\n'.join(getattr(m, '__file__', None) or ''"
        " for m in list(sys.modules.values())))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{tmp_path / 'gen'}", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=True,
    )

    from_checkout = [
        f
        for f in result.stdout.splitlines()
        if f.startswith(str(ROOT)) and not f.startswith(str(ROOT / ".venv"))
    ]
    assert from_checkout == []


@pytest.mark.parametrize("name", ["pyproject.toml", "uv.lock"])
def test_dependency_files_are_in_the_build_context(name: str) -> None:
    assert f"!{name}" in DOCKERIGNORE.read_text().splitlines()
