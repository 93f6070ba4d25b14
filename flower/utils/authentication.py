"""Who a request's credentials name: ``--auth`` patterns and ``--basic_auth`` entries.

Kept apart from the handlers so that configuration files and custom login
handlers can import the checks (Flower 2.2 has them here too).
"""
import base64
import binascii
import hmac
import re


def authenticate(pattern: str | None, email: str | None) -> bool:
    """True if ``pattern`` matches the *whole* of ``email`` (a prefix match is not enough)."""
    if not pattern or not email:
        return False
    return re.fullmatch(pattern, email) is not None


def validate_auth_option(pattern: str | None) -> bool:
    """True if ``pattern`` is usable as ``--auth``: a non-empty, valid regular expression."""
    if not pattern:
        return False
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def basic_auth_user(header: str, credentials: list[str]) -> str | None:
    """Return the user name if ``header`` carries one of ``credentials`` ("user:password").

    Every configured entry is compared in constant time, so timing does not reveal
    which user exists or how much of a password matched.
    """
    scheme, _, encoded = header.partition(' ')
    if scheme.lower() != 'basic' or not encoded:
        return None
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    matched = None
    for entry in credentials:
        if hmac.compare_digest(given, entry.encode('utf-8')):
            matched = entry
    return matched.partition(':')[0] if matched else None
