"""Keep browser tests and tests that change the host's network apart.

Chromium watches the host's addresses and links; when one changes (podman-compose
creating or removing a bridge network and its veth pairs, say) it aborts every
request in flight with ``net::ERR_NETWORK_CHANGED``: a script of the page under
test never loads and the test fails for a reason no user meets. A browser test
holds :func:`network_steady` (shared: browser tests run side by side), a test
that changes the network holds :func:`network_changing` (exclusive) while it does
and for Chromium's settling delay after. The locks are ``flock`` on files every
pytest-xdist worker (and any other suite on the machine) sees.

A turnstile keeps the writer from starving: it takes the gate before waiting for
the shared holders to finish, and new browser tests pass the gate first.
"""
import contextlib
import fcntl
import os
import tempfile
import time

LOCK_DIR = os.path.join(tempfile.gettempdir(), 'flower-tests-host-network')

#: How long Chromium can take to report an address change after it happened
#: (its change notifier waits up to 2 s before telling the network stack).
SETTLE_SECONDS = 3.0


def _lock_file(name):
    os.makedirs(LOCK_DIR, exist_ok=True)
    return open(os.path.join(LOCK_DIR, name), 'a+')


@contextlib.contextmanager
def _flock(name, mode):
    with _lock_file(name) as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def network_steady():
    """Held by a browser test: no test changes the host's network meanwhile."""
    with _flock('gate', fcntl.LOCK_EX):
        pass
    with _flock('network', fcntl.LOCK_SH):
        yield


@contextlib.contextmanager
def network_changing():
    """Held while the host's network changes: waits for running browser tests,
    keeps new ones out, and lets them in only once Chromium has settled."""
    with _flock('gate', fcntl.LOCK_EX), _flock('network', fcntl.LOCK_EX):
        try:
            yield
        finally:
            time.sleep(SETTLE_SECONDS)
