"""Polling for conditions that real processes make true in their own time."""
import time


def wait_for(predicate, timeout=30.0, interval=0.2, what='the condition'):
    """Poll ``predicate`` until it returns something true; return that.

    Raises ``AssertionError`` naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
