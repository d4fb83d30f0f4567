"""moto_server, handling one request at a time.

moto implements S3's conditional writes (If-None-Match: *, If-Match) as check-then-put
(moto/s3/responses.py), so two concurrent requests can both "win": two writers each create
the same object. Amazon S3 decides them atomically. tftrail's concurrency tests need that
atomicity, so this launcher runs the real moto server with every request handled under one
lock (moto is a Python server: the GIL already runs one request's code at a time, so little
is lost). Arguments are moto_server's (-H HOST -p PORT ...).
"""

import threading

from moto import server

_lock = threading.Lock()
_call = server.DomainDispatcherApplication.__call__


def _serialised(self, environ, start_response):
    with _lock:
        # Produce the whole response under the lock: the write happens while it is built.
        return list(_call(self, environ, start_response))


server.DomainDispatcherApplication.__call__ = _serialised

if __name__ == "__main__":
    server.main()
