"""HTTP routes read from the `google.api.http` options in the protos.

The protos are the single source of truth: every RPC that declares an HTTP
binding becomes a route, and nothing else does.
"""

import importlib
import pkgutil
import re
from dataclasses import dataclass

import cloudark
from google.api import annotations_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor

_PARAM = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


@dataclass(frozen=True)
class Route:
    verb: str
    template: str
    body: str
    method: MethodDescriptor

    @property
    def service(self) -> str:
        """The Cloud Ark service answering it, from the proto package name."""
        return self.method.containing_service.full_name.split(".")[1]

    @property
    def grpc_path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.template)

    @property
    def operation_id(self) -> str:
        """Service and method: two services may both have, say, RecordVisit."""
        return f"{self.method.containing_service.name}_{self.method.name}"


def load_all_protos() -> None:
    """Imports every generated module, so every service's descriptor is known."""
    for module in pkgutil.walk_packages(cloudark.__path__, "cloudark."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)


def discover() -> list[Route]:
    load_all_protos()
    pool = descriptor_pool.Default()
    routes = []
    for file_name in _cloudark_files():
        for service in pool.FindFileByName(file_name).services_by_name.values():
            for method in service.methods:
                route = _route(method)
                if route is not None:
                    routes.append(route)
    return sorted(routes, key=lambda r: (r.template, r.verb))


def _cloudark_files() -> list[str]:
    names = []
    for module in pkgutil.walk_packages(cloudark.__path__, "cloudark."):
        if module.name.endswith("_pb2"):
            names.append(importlib.import_module(module.name).DESCRIPTOR.name)
    return names


def _route(method: MethodDescriptor) -> Route | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule = options.Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    if verb is None or verb == "custom":
        return None
    return Route(verb.upper(), getattr(rule, verb), rule.body, method)
