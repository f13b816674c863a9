import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.common.logs import configure_logging


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("test")
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_lines_are_json_with_the_trace_they_belong_to(
    captured: io.StringIO,
) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("cloudark.test").info("errand %s accepted", "e-1")

    line = json.loads(captured.getvalue().strip().splitlines()[-1])
    assert line["message"] == "errand e-1 accepted"
    assert line["level"] == "INFO"
    assert line["process"] == "test"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
