"""Flower: a web monitor and control panel for Celery clusters."""

__version__ = '2.1.0'
VERSION = tuple(int(part) for part in __version__.split('.'))
