"""How ``python -m flower.healthcheck`` finds the Flower process and its options.

Pure logic on command lines and a fake ``/proc``; tests/test_container.py runs
the probe for real as the image's HEALTHCHECK.
"""
import pytest

from flower.healthcheck import (
    ProbeError,
    find_flower_process,
    flower_arguments,
    local_host,
)


@pytest.mark.parametrize('argv, expected', [
    (['/usr/bin/python3', '/usr/local/bin/celery', 'flower', '--port=5641'], ['--port=5641']),
    (['celery', '-A', 'proj', '--broker', 'redis://r/0', 'flower', '--port', '1'], ['--port', '1']),
    (['celery', 'flower'], []),
    (['python', '-m', 'flower', '-A', 'proj', '--url_prefix=x'], ['--url_prefix=x']),
    (['python', '-m', 'flower', 'flower', '--port=2'], ['--port=2']),
    (['celery', '-A', 'proj', 'worker', '-E'], None),
    (['python', '-m', 'flower.healthcheck'], None),
    (['/bin/sh', '-c', 'set -- celery flower "$@"; exec "$@"', 'entrypoint'], None),
])
def test_flower_arguments_of_a_command_line(argv, expected):
    assert flower_arguments(argv) == expected


def write_process(proc, pid, argv):
    directory = proc / str(pid)
    directory.mkdir()
    (directory / 'cmdline').write_bytes(b''.join(arg.encode() + b'\0' for arg in argv))


def test_the_flower_process_is_found_behind_an_init_process(tmp_path):
    write_process(tmp_path, 1, ['/run/podman-init', '--', '/usr/bin/tini'])
    write_process(tmp_path, 12, ['python', '/usr/local/bin/celery', 'flower', '--port=7000'])
    write_process(tmp_path, 9, ['sleep', '100'])
    (tmp_path / 'self').mkdir()
    assert find_flower_process(tmp_path) == (12, ['--port=7000'])


def test_no_flower_process_is_a_probe_error(tmp_path):
    write_process(tmp_path, 1, ['sleep', 'infinity'])
    with pytest.raises(ProbeError, match='no "celery flower" process'):
        find_flower_process(tmp_path)


@pytest.mark.parametrize('address, host', [
    ('', '127.0.0.1'), ('0.0.0.0', '127.0.0.1'), ('::', '::1'), ('10.1.2.3', '10.1.2.3'),
])
def test_the_probe_calls_loopback_when_flower_listens_everywhere(address, host):
    assert local_host(address) == host
