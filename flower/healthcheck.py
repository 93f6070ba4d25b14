"""Probe the running Flower's ``/healthcheck`` where that Flower really listens.

``python -m flower.healthcheck`` is the container image's HEALTHCHECK. A
probe with a fixed URL goes wrong as soon as someone starts the container
with ``--port=5641`` or a URL prefix, so this one finds the ``celery flower``
process, reads its command line from ``/proc`` and works out its port,
address, unix socket, URL prefix and TLS with the same precedence Flower
itself uses (command line, ``FLOWER_*`` environment, configuration file).

Exit status 0 when the answer is ``OK``, 1 otherwise (with the reason on
stdout, which podman and Docker keep in the health log).
"""
import http.client
import os
import socket
import ssl
import sys
from pathlib import Path

from tornado.options import options

from flower.__main__ import split_argv
from flower.app import normalize_url_prefix
from flower.command import OptionError, apply_env_options, apply_options
from flower.utils import abs_path

PROBE_TIMEOUT = 5  # seconds
PROC = Path('/proc')


class ProbeError(Exception):
    """The probe could not get an ``OK``; the message says why."""


def flower_arguments(argv: list[str]) -> list[str] | None:
    """Flower's options in a ``celery ... flower ...`` or ``python -m flower ...``
    command line; None for any other command line."""
    for index, arg in enumerate(argv):
        if arg == '-m' and argv[index + 1:index + 2] == ['flower']:
            argv = split_argv(argv[index + 2:])
            return argv[argv.index('flower') + 1:]
        if os.path.basename(arg) == 'celery':
            try:
                return argv[argv.index('flower', index + 1) + 1:]
            except ValueError:
                return None
    return None


def find_flower_process(proc: Path = PROC) -> tuple[int, list[str]]:
    """The lowest pid running ``celery ... flower`` and its Flower options.

    Usually pid 1 in a container, but ``--init`` puts an init process first.
    """
    pids = sorted(int(entry.name) for entry in proc.iterdir() if entry.name.isdigit())
    for pid in pids:
        try:
            raw = (proc / str(pid) / 'cmdline').read_bytes()
        except OSError:
            continue
        argv = [arg.decode(errors='replace') for arg in raw.split(b'\0')[:-1]]
        arguments = flower_arguments(argv)
        if arguments is not None:
            return pid, arguments
    raise ProbeError('no "celery flower" process is running')


def load_process_options(pid: int, arguments: list[str], proc: Path = PROC) -> None:
    """Set the global options as the Flower process ``pid`` set its own: from its
    environment and working directory (a relative ``--conf`` is relative to it)."""
    try:
        environ = (proc / str(pid) / 'environ').read_bytes()
    except OSError:
        pass  # another user's process: the probe's own environment is the best guess
    else:
        os.environ.clear()
        os.environ.update(entry.decode(errors='replace').partition('=')[::2]
                          for entry in environ.split(b'\0') if b'=' in entry)
    try:
        os.chdir(proc / str(pid) / 'cwd')
    except OSError:
        pass
    try:
        apply_env_options()
        apply_options('flower', arguments)
    except OptionError as exc:
        raise ProbeError(f'cannot read the options of pid {pid}: {exc}') from None


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the unix socket Flower listens on (``--unix_socket``)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__('localhost', timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def local_host(address: str) -> str:
    """The address to call: Flower's own, or loopback when it listens everywhere."""
    if address in ('', '0.0.0.0'):
        return '127.0.0.1'
    if address == '::':
        return '::1'
    return address


def connection_and_path() -> tuple[http.client.HTTPConnection, str]:
    """A connection to where the current options make Flower listen, and the probe's path."""
    path = normalize_url_prefix(options.url_prefix) + '/healthcheck'
    if options.unix_socket:
        return UnixHTTPConnection(abs_path(options.unix_socket), PROBE_TIMEOUT), path
    host = local_host(options.address)
    if options.certfile:
        # Flower's certificate is for its public name, not for loopback: this
        # probe checks liveness, the identity is not in question.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(host, options.port, timeout=PROBE_TIMEOUT,
                                           context=context), path
    return http.client.HTTPConnection(host, options.port, timeout=PROBE_TIMEOUT), path


def probe() -> str:
    """Call the running Flower's ``/healthcheck``; return a one-line success message."""
    pid, arguments = find_flower_process()
    load_process_options(pid, arguments)
    connection, path = connection_and_path()
    where = f'{options.unix_socket or f"{connection.host}:{connection.port}"}{path}'
    try:
        connection.request('GET', path)
        response = connection.getresponse()
        body = response.read(100).strip()
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeError(f'{where}: {exc}') from None
    finally:
        connection.close()
    if response.status != 200 or body != b'OK':
        raise ProbeError(f'{where}: HTTP {response.status} {body[:40]!r}')
    return f'{where}: OK'


def main() -> int:
    try:
        print(probe())
    except ProbeError as exc:
        print(f'unhealthy: {exc}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
