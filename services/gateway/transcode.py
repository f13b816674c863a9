"""JSON and path/query parameters to proto requests, and proto responses to JSON."""

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.message import Message

from services.common.errors import FieldViolation, InvalidArgument
from services.gateway.routes import Route


def build_request(
    route: Route,
    path_params: Mapping[str, str],
    query: Mapping[str, str],
    body: Any,
) -> Message:
    """The gRPC request for an HTTP call; INVALID_ARGUMENT names a bad field."""
    message = message_factory.GetMessageClass(route.method.input_type)()
    fields: dict[str, Any] = {}
    if route.body == "*":
        if not isinstance(body, dict):
            raise InvalidArgument.field("body", "must be a JSON object")
        fields.update(body)
    else:
        fields.update(_query_fields(route, query))
    fields.update(path_params)
    try:
        json_format.ParseDict(fields, message)
    except json_format.ParseError as error:
        raise InvalidArgument(
            [FieldViolation(_field_of(error, fields), str(error))]
        ) from None
    return message


def to_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def _query_fields(route: Route, query: Mapping[str, str]) -> dict[str, str]:
    known = {f.name for f in route.method.input_type.fields}
    unknown = sorted(set(query) - known)
    if unknown:
        raise InvalidArgument(
            [FieldViolation(name, "is not a parameter") for name in unknown]
        )
    return dict(query)


def _field_of(error: json_format.ParseError, fields: Mapping[str, Any]) -> str:
    """The field a parse error is about, as best as its message tells."""
    text = str(error)
    for name in fields:
        if f'"{name}"' in text or f" {name}" in text:
            return name
    return "body"
