"""Logging for operators: JSON lines by default, configured at entry points only.

Library code logs through `logging.getLogger(__name__)` with lazy `%s`
arguments and never logs personal data (names, phone or ID numbers,
addresses): ids and states only.
"""

import logging
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from services.common.config import env


class TraceIds(logging.Filter):
    """Adds the current trace and span ids, so a log line leads to its trace.

    Workflow and activity loggers add their own workflow ids (the SDK puts
    them under `temporal_workflow` / `temporal_activity`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def configure_logging(process: str) -> None:
    """Sends every log record to stderr, as JSON lines unless told otherwise."""
    handler = logging.StreamHandler(sys.stderr)
    if env("CLOUDARK_LOG_FORMAT", "json") == "text":
        handler.setFormatter(
            logging.Formatter(
                f"%(asctime)s {process} %(levelname)s %(name)s %(message)s"
            )
        )
    else:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level"},
                static_fields={"process": process},
            )
        )
    handler.addFilter(TraceIds())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(env("CLOUDARK_LOG_LEVEL", "INFO").upper())
    # The Temporal core and gRPC libraries are chatty at INFO.
    logging.getLogger("temporalio").setLevel(logging.WARNING)
