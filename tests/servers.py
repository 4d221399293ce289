"""The product's ASGI application served for real (uvicorn in a thread of the test process) on a free port.

In-process, so the test database, settings overrides and per-process state (circuit breakers) are shared with the
test; over a real socket, so clients (the official ``openai`` package, browsers) speak real HTTP, SSE included.
"""
import contextlib
import gc
import socket
import threading
import time


def free_port():
    """A free local port (nothing listens on it until someone binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def asgi_server():
    import uvicorn

    from coe_site.asgi import application

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="asgi-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the ASGI test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        gc.collect()  # the server's pool threads are gone: free their database connections now, not at exit
