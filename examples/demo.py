"""Live demo: a small Celery cluster with some traffic, watched by Flower.

    python examples/demo.py [--port 5555]

starts, all on this machine:

* a private redis-server on a free port (broker and result backend),
* two workers, ``demo1@<host>`` and ``demo2@<host>``, running
  ``examples/tasks.py``,
* a thread sending one or two demo tasks a second (some fail, some retry),
* Flower, in the foreground, at http://localhost:5555, on the loopback
  interface only; it has no authentication, so its control buttons are
  opened on purpose (``--unauthenticated_api``) for this throwaway cluster.

Ctrl-C (or SIGTERM) stops everything and leaves no process behind. Logs of
Redis and the workers stay in the directory printed at start-up.
"""

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time

EXAMPLES_DIR = os.path.dirname(os.path.abspath(__file__))
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

from cluster import (  # noqa: E402  (needs the sys.path tweak above)
    CeleryWorker, RedisServer, Subprocess, celery_client, port_is_open,
)

WORKER_NAMES = ('demo1@%h', 'demo2@%h')

# (weight, task name, function returning the positional arguments)
TASK_MIX = (
    (5, 'tasks.add', lambda rnd: (rnd.randint(0, 99), rnd.randint(0, 99))),
    (4, 'tasks.mul', lambda rnd: (rnd.randint(0, 20), rnd.randint(0, 20))),
    (4, 'tasks.sleep', lambda rnd: (round(rnd.uniform(0.5, 2.0), 2),)),
    (3, 'tasks.echo', lambda rnd: (rnd.choice(
        ['hello', 42, [1, 2, 3], {'flower': 'demo'}, None]),)),
    (1, 'tasks.error', lambda rnd: (rnd.choice(
        ['boom', 'demo failure', 'something went wrong']),)),
    (1, 'tasks.retry_then_succeed', lambda rnd: ()),
    (0.5, 'tasks.always_fails_with_retries', lambda rnd: ()),
)


def say(message):
    print(f'[demo] {message}', flush=True)


class TaskSender(threading.Thread):
    """Sends a light, random stream of example tasks until stopped."""

    def __init__(self, app, rate=1.5, seed=None):
        super().__init__(name='demo-task-sender', daemon=True)
        self.app = app
        self.rate = rate
        self.random = random.Random(seed)
        self.stopping = threading.Event()
        self.sent = 0

    def stop(self, timeout=5):
        self.stopping.set()
        if self.is_alive():
            self.join(timeout)

    def run(self):
        weights = [weight for weight, _, _ in TASK_MIX]
        failures = 0
        while not self.stopping.wait(self.random.uniform(0.5, 1.5)
                                     / self.rate):
            _, name, make_args = self.random.choices(TASK_MIX, weights)[0]
            try:
                self.app.send_task(name, make_args(self.random))
            except Exception as exc:  # broker hiccup: keep going
                failures += 1
                if failures == 1 or failures % 50 == 0:
                    say(f'could not send {name}: {exc!r}')
            else:
                self.sent += 1


class Demo:
    def __init__(self, port=5555, redis_port=None, log_dir=None, rate=1.5):
        self.port = port
        self.log_dir = log_dir or tempfile.mkdtemp(prefix='flower-demo-')
        os.makedirs(self.log_dir, exist_ok=True)
        self.rate = rate
        # Children get process groups of their own (we signal them as
        # groups) but stay in our session: `ps -s <demo pid>` shows them all.
        self.redis = RedisServer(port=redis_port, dir=self.log_dir,
                                 new_session=False)
        self.workers = []
        self.client = None
        self.sender = None
        self.flower = None

    def run(self):
        """Start everything, then wait for Flower; returns an exit code."""
        say(f'logs in {self.log_dir}')
        self.redis.start()
        url = self.redis.url
        say(f'redis-server (pid {self.redis.pid}) at {url}')

        self.client = celery_client(url)
        for name in WORKER_NAMES:
            worker = CeleryWorker(url, name, log_dir=self.log_dir,
                                  new_session=False)
            self.workers.append(worker)
            worker.start()
        for worker in self.workers:
            worker.wait_ready(60, client=self.client)
            say(f'worker {worker.hostname} (pid {worker.pid}) is up')

        self.sender = TaskSender(self.client, rate=self.rate)
        self.sender.start()
        say(f'sending about {self.rate:g} demo tasks per second')

        env = dict(os.environ, CELERY_BROKER_URL=url,
                   CELERY_RESULT_BACKEND=url)
        # The venv's own ``celery`` script, not ``python -m celery``: that would
        # put the current directory first on sys.path, and from a checkout
        # import its flower/ instead of the installed one.
        celery = os.path.join(os.path.dirname(sys.executable), 'celery')
        self.flower = Subprocess(
            [celery, '-A', 'tasks',
             '--workdir', EXAMPLES_DIR, '--broker', url,
             'flower', '--port', str(self.port), '--address', '127.0.0.1',
             '--unauthenticated_api'],
            name='flower', env=env, log_dir=self.log_dir,
            new_session=False, capture=False)
        self.flower.start()
        say(f'starting Flower (pid {self.flower.pid}) on port {self.port}')

        announced = False
        while True:
            code = self.flower.process.poll()
            if code is not None:
                say(f'Flower exited on its own (exit code {code})')
                return code or 1
            if not announced and port_is_open(self.port):
                announced = True
                say(f'Flower is up: browse http://localhost:{self.port}'
                    '  (Ctrl-C to stop the demo)')
            time.sleep(0.2)

    def shutdown(self):
        """Stop everything that was started; never raises."""
        steps = []
        if self.sender is not None:
            steps.append(('task sender', self.sender.stop))
        if self.flower is not None:
            steps.append(('Flower', self.flower.stop))
        if self.workers:
            steps.append(('workers', self._stop_workers))
        steps.append(('redis-server', self.redis.stop))
        if self.client is not None:
            steps.append(('client', self.client.close))
        for what, step in steps:
            try:
                step()
            except Exception as exc:
                say(f'error while stopping {what}: {exc!r}')
        say('stopped')

    def _stop_workers(self):
        # Warm shutdowns wait for running tasks (up to 2 s here): in parallel.
        threads = [threading.Thread(target=worker.stop, args=(20,))
                   for worker in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _interrupt(signum, frame):
    # First SIGINT/SIGTERM: unwind into the cleanup; ignore any further one
    # so that cleanup is not cut short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run a demo Celery cluster monitored by Flower.')
    parser.add_argument('--port', type=int, default=5555,
                        help='port Flower listens on (default: 5555)')
    parser.add_argument('--redis-port', type=int, default=None,
                        help='port of the private redis-server '
                             '(default: a free one)')
    parser.add_argument('--log-dir', default=None,
                        help='where Redis and workers write their logs '
                             '(default: a new temporary directory)')
    parser.add_argument('--rate', type=float, default=1.5,
                        help='demo tasks sent per second (default: 1.5)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    demo = Demo(port=args.port, redis_port=args.redis_port,
                log_dir=args.log_dir, rate=args.rate)
    code = 0
    try:
        code = demo.run()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(flush=True)
        say('interrupted, stopping everything...')
    except Exception as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        say(f'failed: {exc}')
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        demo.shutdown()
    return code


if __name__ == '__main__':
    sys.exit(main())
