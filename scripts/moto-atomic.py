"""moto_server, handling one request at a time.

moto implements S3's conditional writes (If-None-Match: *, If-Match) as check-then-put
(moto/s3/responses.py), so two concurrent requests can both "win": two writers each create
the same object. Amazon S3 decides them atomically. tftrail's concurrency tests need that
atomicity, so this launcher runs the real moto server with every request handled under one
lock (moto is a Python server: the GIL already runs one request's code at a time, so little
is lost). It also exits when the process that started it is gone, so a test that never stops
its server leaks nothing. Arguments are moto_server's (-H HOST -p PORT ...).
"""

import os
import threading
import time

from moto import server

_lock = threading.Lock()
_call = server.DomainDispatcherApplication.__call__


def _serialised(self, environ, start_response):
    with _lock:
        # Produce the whole response under the lock: the write happens while it is built.
        return list(_call(self, environ, start_response))


server.DomainDispatcherApplication.__call__ = _serialised


def _exit_with_parent():
    # A test that holds its server in a static (never dropped) or dies on a panic or SIGKILL
    # leaves the server behind; it goes when its parent does.
    parent = os.getppid()
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(0)


if __name__ == "__main__":
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    server.main()
