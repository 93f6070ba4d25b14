"""What may be at the path of a ``--persistent`` history before Flower opens it.

:func:`check_history_path` refuses anything that is clearly not a history, so
Flower never writes over a user's file; :func:`create_private` makes a new
history readable by its owner only.
"""
import os
import stat


#: The first bytes of every SQLite database file.
SQLITE_HEADER = b'SQLite format 3\x00'
#: How much of a file is read to tell text from binary data.
_SNIFF_SIZE = 4096


class NotAHistory(Exception):
    """The history path holds something that is not a history; it is left alone."""


def _looks_like_text(head: bytes) -> bool:
    if b'\x00' in head:
        return False
    try:
        head.decode('utf-8')
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the sample is still text.
        return exc.start >= len(head) - 3 and len(head) == _SNIFF_SIZE
    return True


def check_history_path(path: str) -> None:
    """Raise :class:`NotAHistory` if ``path`` holds something Flower must not touch.

    A missing or empty file is fine (a new history starts there), and so is
    any SQLite database or unreadable binary data: those may be a damaged
    history, which Flower moves aside. Refused: anything but a regular file
    (a directory such as the ``flower`` package of a source checkout, a
    FIFO, a device), a text file, an executable, a file owned by another user.
    """
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        raise NotAHistory(f"{path} is a directory, not a task history file")
    if not stat.S_ISREG(info.st_mode):
        raise NotAHistory(f"{path} is not a regular file")
    if info.st_size == 0:
        return
    if info.st_uid != os.geteuid():
        raise NotAHistory(f"{path} belongs to another user; it is not a task history "
                          "Flower created")
    if info.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        raise NotAHistory(f"{path} is executable; it is not a task history")
    with open(path, 'rb') as existing:
        head = existing.read(_SNIFF_SIZE)
    if not head.startswith(SQLITE_HEADER) and _looks_like_text(head):
        raise NotAHistory(f"{path} is a text file, not a task history")


def create_private(path: str) -> None:
    """Create ``path`` empty, readable and writable by its owner only, if it is missing.

    SQLite gives its ``-wal`` and ``-shm`` files the database's permissions.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)
