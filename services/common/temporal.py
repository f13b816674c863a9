"""The one way every Cloud Ark process connects to Temporal."""

import asyncio

from temporalio.client import Client
from temporalio.runtime import Runtime

from services.common.config import Settings
from services.common.tracing import temporal_interceptors
from workflows.codec import data_converter


async def connect_temporal(
    settings: Settings, timeout: float = 60.0, runtime: Runtime | None = None
) -> Client:
    """Connects to Temporal, waiting for a server that is still starting.

    Every client seals payloads with the codec and, when tracing is on,
    traces workflow starts, workflows and activities.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await Client.connect(
                settings.temporal_address,
                namespace=settings.temporal_namespace,
                data_converter=data_converter(),
                interceptors=temporal_interceptors(),
                runtime=runtime,
            )
        except RuntimeError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)
