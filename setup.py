import os
import re

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read_version():
    with open(os.path.join(HERE, 'flower', '__init__.py'), encoding='utf-8') as init:
        return re.search(r"__version__ = '([^']+)'", init.read()).group(1)


def read_readme():
    with open(os.path.join(HERE, 'README.md'), encoding='utf-8') as readme:
        return readme.read()


POSTGRESQL = ['psycopg[binary]>=3.1', 'psycopg-pool>=3.2']


setup(
    name='flower',
    version=read_version(),
    description='Web based tool for monitoring and administrating Celery clusters',
    long_description=read_readme(),
    long_description_content_type='text/markdown',
    license='BSD-3-Clause',
    packages=find_packages(exclude=['tests', 'tests.*', 'benchmarks', 'examples']),
    include_package_data=True,
    package_data={'flower': ['templates/*.html', 'static/**/*', 'static/*', 'api/openapi.json']},
    python_requires='>=3.11',
    install_requires=[
        'celery>=5.3',
        # The Redis transport of kombu needs more than redis-py (packaging):
        # its own extra names what it needs, so a plain install watches Redis.
        'kombu[redis]>=5.3',
        'tornado>=6.3,<7',
        'prometheus-client>=0.17',
        'humanize>=4.0',
        'pytz',
        'click>=8.1',
        'redis>=5.0',
        'hiredis>=2.0',
        # Event bodies decoded three times as fast as with the standard library.
        'msgspec>=0.18',
    ],
    extras_require={
        # --db=postgresql://... keeps the task history in PostgreSQL.
        'postgresql': POSTGRESQL,
        'test': [
            'pytest>=8',
            'pytest-tornado>=0.8',
            # scripts/test.sh runs the test modules in parallel processes (-n): the tests
            # mostly wait on workers, brokers and browsers, so the suite takes a fraction
            # of its serial time.
            'pytest-xdist>=3.6',
            'sphinx>=7',
            'build',
            'ruff',
            'playwright',
            # tests/api/test_openapi.py validates the API's document, and the API tests
            # check every JSON answer against it (tests/support/openapi.py).
            'openapi-spec-validator',
            'jsonschema>=4.18',
            # tests/test_examples_replicas.py reads the compose file and the Kubernetes manifest.
            'pyyaml>=6',
            *POSTGRESQL,
        ],
    },
    entry_points={
        'celery.commands': ['flower = flower.command:flower'],
    },
    classifiers=[
        'Programming Language :: Python :: 3.11',
        'Framework :: Celery',
    ],
)
