"""A bare grpc.aio unary echo server, the gRPC baseline of `make bench`.

It answers `/bench.Echo/Echo` with the request's own bytes: no protobuf, no
interceptors, no database. It prints its port on the first line of stdout and
exits when stdin closes, so it never outlives the bench that started it.

Usage: python -m bench.echo_server
"""

import asyncio
import signal
import sys

import grpc

METHOD = "/bench.Echo/Echo"


async def echo(
    request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
) -> bytes:
    return request


async def serve() -> None:
    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    # stdin closes when the parent exits, however it exits.
    await asyncio.to_thread(sys.stdin.read)
    await server.stop(grace=None)


if __name__ == "__main__":
    # Ctrl-C reaches the whole process group; the bench stops us itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(serve())
