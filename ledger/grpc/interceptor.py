"""The one base of the server's interceptors (authentication, the guard with
its limits and exception-to-status table, metrics and the canonical log line).

grpc.aio hands an interceptor a method handler of one of four kinds (unary or
streaming request, unary or streaming response), and a streaming response may
be yielded or written with ``context.write``. That re-wrapping is done here,
once; a subclass writes a single async generator around one call::

    class Refuser(ServerInterceptor):
        async def intercept(self, rpc, request, context, proceed):
            if not allowed(context):
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")
            async for response in proceed(request, context):
                yield response

``proceed`` runs the next interceptor, then the servicer, and yields its
responses (one for a unary response, none for one written with
``context.write``). The generator runs in the call's task, so context
variables set before ``proceed`` (the principal) are seen by the servicer.
Every registered method passes through every interceptor except the methods
named by the subclass's ``exempt`` prefixes (health checks, reflection).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc

Proceed = Callable[[Any, Any], AsyncIterator[Any]]
Behavior = Callable[[Any, Any], Any]
Deserializer = Callable[[bytes], Any] | None


@dataclass(frozen=True, slots=True)
class Rpc:
    """What an interceptor knows of a call before it runs."""

    method: str
    """``/package.Service/Method`` as registered."""
    request_streaming: bool
    response_streaming: bool
    writes: bool
    """A streaming response written with ``context.write`` (nothing is yielded)."""
    metadata: Sequence[tuple[str, Any]]


_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Subclasses override ``intercept`` (and, when needed, the other hooks)."""

    exempt: ClassVar[tuple[str, ...]] = ()
    """Method-name prefixes this interceptor leaves alone."""

    def intercept(self, rpc: Rpc, request: Any, context: Any,
                  proceed: Proceed) -> AsyncIterator[Any]:
        return proceed(request, context)

    def request_deserializer(self, deserializer: Deserializer) -> Deserializer:
        return deserializer

    def unimplemented(self, details: grpc.HandlerCallDetails) -> None:
        """Called for a method no servicer registered (gRPC answers UNIMPLEMENTED)."""

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method or ""
        if handler is None:
            self.unimplemented(handler_call_details)
            return None
        if method.startswith(self.exempt):
            return handler
        behavior: Behavior = (handler.unary_unary or handler.unary_stream
                              or handler.stream_unary or handler.stream_stream)
        yields = inspect.isasyncgenfunction(behavior) or inspect.isgeneratorfunction(behavior)
        rpc = Rpc(method=method, request_streaming=handler.request_streaming,
                  response_streaming=handler.response_streaming,
                  writes=handler.response_streaming and not yields,
                  metadata=tuple(handler_call_details.invocation_metadata or ()))
        wrapped = self._streamed(rpc, behavior) if yields else self._answered(rpc, behavior)
        factory = _FACTORIES[(handler.request_streaming, handler.response_streaming)]
        return factory(wrapped,
                       request_deserializer=self.request_deserializer(handler.request_deserializer),
                       response_serializer=handler.response_serializer)

    def _answered(self, rpc: Rpc, behavior: Behavior) -> Callable[[Any, Any], Awaitable[Any]]:
        proceed = _responses_of(behavior)

        async def answered(request: Any, context: Any) -> Any:
            result = None
            async for response in self.intercept(rpc, request, context, proceed):
                result = response
            return result

        return answered

    def _streamed(self, rpc: Rpc, behavior: Behavior) -> Callable[[Any, Any], AsyncIterator[Any]]:
        proceed = _responses_of(behavior)

        async def streamed(request: Any, context: Any) -> AsyncIterator[Any]:
            async for response in self.intercept(rpc, request, context, proceed):
                yield response

        return streamed


def _responses_of(behavior: Behavior) -> Proceed:
    """The responses of any handler behaviour (coroutine or plain function,
    async or plain generator) as one async iterator."""

    async def responses(request: Any, context: Any) -> AsyncIterator[Any]:
        result = behavior(request, context)
        if inspect.isasyncgen(result):
            async for item in result:
                yield item
        elif inspect.isgenerator(result):
            for item in result:
                yield item
        else:
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                yield result

    return responses
