"""Collects every bad field of a request before answering INVALID_ARGUMENT."""

import unicodedata
import uuid

from services.common.errors import FieldViolation, InvalidArgument


class Violations:
    """Gathers field violations, so one answer names every bad field."""

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def __bool__(self) -> bool:
        return bool(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise InvalidArgument(self._items)

    def text(
        self, field: str, value: str, *, max_length: int, required: bool = True
    ) -> str:
        """Checks a free-text field; returns it with surrounding space trimmed."""
        trimmed = value.strip()
        if not trimmed:
            if required:
                self.add(field, "is required")
            return trimmed
        if len(trimmed) > max_length:
            self.add(field, f"must be at most {max_length} characters")
        elif any(unicodedata.category(c) == "Cc" for c in trimmed):
            self.add(field, "must not contain control characters")
        return trimmed

    def id(self, field: str, value: str, *, required: bool = True) -> uuid.UUID | None:
        """Checks an id field; returns the parsed id, or None when absent or bad."""
        if not value:
            if required:
                self.add(field, "is required")
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            self.add(field, "is not a valid id")
            return None

    def request_id(self, value: str) -> str:
        """Checks the optional idempotency key every mutating RPC takes."""
        if len(value) > 128:
            self.add("request_id", "must be at most 128 characters")
        elif value and not value.isascii():
            self.add("request_id", "must be ASCII")
        return value
