"""The lock that keeps browser tests and host network changes apart
(tests/support/host_network.py): Chromium fails queued requests with
``net::ERR_NETWORK_CHANGED`` when podman-compose adds a bridge network."""
import threading
import time

import pytest

from tests.support import host_network


@pytest.fixture(autouse=True)
def private_locks(tmp_path, monkeypatch):
    monkeypatch.setattr(host_network, 'LOCK_DIR', str(tmp_path))
    monkeypatch.setattr(host_network, 'SETTLE_SECONDS', 0.2)


def in_thread(lock, log, name, hold):
    def run():
        with lock():
            log.append(f'{name} in')
            time.sleep(hold)
            log.append(f'{name} out')
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_network_change_waits_for_browser_tests_and_keeps_new_ones_out_until_settled():
    log = []
    first = in_thread(host_network.network_steady, log, 'browser 1', 0.5)
    time.sleep(0.1)
    change = in_thread(host_network.network_changing, log, 'change', 0.3)
    time.sleep(0.1)
    second = in_thread(host_network.network_steady, log, 'browser 2', 0)
    for thread in (first, change, second):
        thread.join(timeout=10)
    assert log == ['browser 1 in', 'browser 1 out', 'change in', 'change out',
                   'browser 2 in', 'browser 2 out']


def test_browser_tests_run_side_by_side():
    log = []
    threads = [in_thread(host_network.network_steady, log, f'browser {n}', 0.3) for n in (1, 2)]
    for thread in threads:
        thread.join(timeout=10)
    assert log[:2] == ['browser 1 in', 'browser 2 in']
