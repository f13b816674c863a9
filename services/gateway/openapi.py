"""The OpenAPI 3 document, generated from the same descriptors as the routes."""

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from services.gateway.routes import Route

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32", "minimum": 0},
    # Proto JSON writes 64-bit integers as strings.
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
}
PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "violations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "description": {"type": "string"},
                },
            },
        },
    },
}


def document(routes: list[Route], extra_paths: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Problem": PROBLEM}
    paths: dict[str, Any] = dict(extra_paths)
    for route in routes:
        operation = _operation(route, schemas)
        paths.setdefault(route.template, {})[route.verb.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Cloud Ark gateway",
            "version": "1",
            "description": "HTTP/JSON over the Cloud Ark gRPC contracts.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    request = route.method.input_type
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "tags": [route.service],
        "parameters": _parameters(route),
        "responses": {
            "200": _json_content(_ref(route.method.output_type, schemas), "OK"),
            "default": {
                "description": "A problem",
                "content": {
                    "application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}
                    }
                },
            },
        },
    }
    if route.body == "*":
        body = _json_content(_ref(request, schemas), "The request")
        operation["requestBody"] = {"required": True, "content": body["content"]}
    return operation


def _parameters(route: Route) -> list[dict[str, Any]]:
    fields = {f.name: f for f in route.method.input_type.fields}
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _field_schema(fields[name], {}),
        }
        for name in route.path_params
    ]
    if route.body != "*":
        params += [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": _field_schema(field, {}),
            }
            for name, field in fields.items()
            if name not in route.path_params
            and field.type != FieldDescriptor.TYPE_MESSAGE
        ]
    return params


def _json_content(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }


def _ref(message: Descriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if message.full_name in _WELL_KNOWN:
        return _WELL_KNOWN[message.full_name]
    name = message.full_name
    if name not in schemas:
        schemas[name] = {}  # placeholder first: messages may refer to themselves
        schemas[name] = {
            "type": "object",
            "properties": {f.name: _field_schema(f, schemas) for f in message.fields},
        }
    return {"$ref": f"#/components/schemas/{name}"}


def _field_schema(field: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        one = _ref(field.message_type, schemas)
    elif field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
        one = {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    else:
        one = dict(_SCALARS.get(field.type, {"type": "string"}))
    return {"type": "array", "items": one} if field.is_repeated else one


def _problem_responses() -> dict[str, Any]:
    return {
        "default": {
            "description": "An error (application/problem+json)",
            "content": {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"}
                }
            },
        }
    }


# The gateway's own endpoints, which no RPC stands behind.
GATEWAY_PATHS: dict[str, Any] = {
    "/v1/auth:refresh": {
        "post": {
            "operationId": "RefreshToken",
            "tags": ["auth"],
            "security": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["refresh_token"],
                            "properties": {"refresh_token": {"type": "string"}},
                        }
                    }
                },
            },
            "responses": {
                "200": {"description": "A new access and refresh token pair"},
                **_problem_responses(),
            },
        }
    },
    "/v1/photos": {
        "post": {
            "operationId": "UploadPhoto",
            "tags": ["photos"],
            "description": "A JPEG, PNG or WebP photo as the raw body; the answer's"
            " ref goes into attachment_refs or photo_ref fields.",
            "requestBody": {
                "required": True,
                "content": {
                    kind: {"schema": {"type": "string", "format": "binary"}}
                    for kind in ("image/jpeg", "image/png", "image/webp")
                },
            },
            "responses": {
                "201": {
                    "description": "Stored",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "ref": {"type": "string"},
                                    "content_type": {"type": "string"},
                                    "size": {"type": "integer"},
                                },
                            }
                        }
                    },
                },
                **_problem_responses(),
            },
        }
    },
    "/v1/photos/{name}": {
        "get": {
            "operationId": "GetPhoto",
            "tags": ["photos"],
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": {
                    "description": "The photo",
                    "content": {
                        kind: {"schema": {"type": "string", "format": "binary"}}
                        for kind in ("image/jpeg", "image/png", "image/webp")
                    },
                },
                **_problem_responses(),
            },
        }
    },
}
