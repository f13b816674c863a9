"""Requests generated from the proto descriptors, for every RPC of a service.

Each field gets a value that is plausible, wrong, or hostile: empty and huge
strings, ids that exist, ids that do not, garbage, control characters,
negative and extreme numbers, unknown enum values. New RPCs and fields are
covered without a line of code here.
"""

import random
import uuid
from collections.abc import Sequence

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message

HOSTILE_STRINGS = [
    "",
    " ",
    "not-an-id",
    "x" * 5000,
    "bad\x00byte",
    "bell\x07",
    "微网格 1",
    "'; DROP TABLE areas; --",
    "ZXlKMklqb3hmUQ",
    "-1",
]
INTS = [0, 1, -1, 2, 7, 1000, 2**31 - 1, -(2**31)]


class RequestFuzzer:
    """Makes requests for the methods of services, reusing ids it has seen."""

    def __init__(self, seed: int, known_ids: Sequence[str] = ()) -> None:
        self._random = random.Random(seed)
        self.known_ids = list(known_ids)

    def request(self, method: MethodDescriptor) -> Message:
        return self._message(method.input_type, depth=0)

    def _message(self, descriptor: Descriptor, depth: int) -> Message:
        message = message_factory.GetMessageClass(descriptor)()
        for field in descriptor.fields:
            if self._random.random() < 0.25:
                continue
            if _is_map(field):
                self._fill_map(message, field)
            elif field.is_repeated:
                for _ in range(self._random.randrange(3)):
                    self._append(message, field, depth)
            else:
                self._set(message, field, depth)
        return message

    def _set(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        nested = self._nested(field, depth)
        if nested is not None:
            getattr(message, field.name).CopyFrom(nested)
        elif field.type != FieldDescriptor.TYPE_MESSAGE:
            setattr(message, field.name, self._scalar(field))

    def _append(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        container = getattr(message, field.name)
        nested = self._nested(field, depth)
        if nested is not None:
            container.add().CopyFrom(nested)
        elif field.type != FieldDescriptor.TYPE_MESSAGE:
            container.append(self._scalar(field))

    def _fill_map(self, message: Message, field: FieldDescriptor) -> None:
        """String-keyed maps of strings (variables, texts by language)."""
        entry = field.message_type
        assert entry is not None
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        container = getattr(message, field.name)
        for _ in range(self._random.randrange(3)):
            name = self._random.choice(["zh", "en", "day", "x", *HOSTILE_STRINGS[:3]])
            if value.type != FieldDescriptor.TYPE_MESSAGE:
                container[name if key.type == key.TYPE_STRING else 0] = self._scalar(
                    value
                )

    def _nested(self, field: FieldDescriptor, depth: int) -> Message | None:
        """A generated sub-message; well-known types and deep nesting are skipped."""
        kind = field.message_type
        if kind is None or depth >= 2 or kind.full_name.startswith("google."):
            return None
        return self._message(kind, depth + 1)

    def _scalar(self, field: FieldDescriptor) -> object:
        kind = field.type
        if kind == FieldDescriptor.TYPE_STRING:
            return self._string(field.name)
        if kind == FieldDescriptor.TYPE_BOOL:
            return self._random.random() < 0.5
        if kind == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
            values = [v.number for v in field.enum_type.values]
            return self._random.choice([*values, 999])
        if kind == FieldDescriptor.TYPE_BYTES:
            return self._random.randbytes(self._random.choice([0, 3, 64]))
        if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return self._random.choice([0.0, -1.5, 30.0, 122.1, 1e308])
        value = self._random.choice(INTS)
        unsigned = kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64)
        return abs(value) if unsigned else value

    def _string(self, name: str) -> str:
        roll = self._random.random()
        if name == "request_id" or roll < 0.15:
            return str(uuid.UUID(int=self._random.getrandbits(128)))
        if name.endswith("id") and self.known_ids and roll < 0.65:
            return self._random.choice(self.known_ids)
        if roll < 0.8:
            return self._random.choice(HOSTILE_STRINGS)
        return f"name {self._random.randrange(10_000)}"


def _is_map(field: FieldDescriptor) -> bool:
    kind = field.message_type
    return kind is not None and kind.GetOptions().map_entry


def service_descriptor(full_name: str) -> ServiceDescriptor:
    return descriptor_pool.Default().FindServiceByName(full_name)
