"""Hide secrets in what workers report before a page shows it.

Celery workers already censor their configuration and leave the broker
password out of ``stats``, but older or customised workers may not: the pages
mask again, by setting name and by any password written inside a URL.
"""
import re

from flower.utils.broker import mask_password

MASK = '********'

#: Setting names whose values are secret (Celery hides the same ones).
SECRET_NAME = re.compile(r'API|TOKEN|KEY|SECRET|PASS|SIGNATURE|DATABASE|BEAT_DBURI', re.IGNORECASE)

#: ``scheme://user:password@host`` anywhere inside a string.
_URL_WITH_PASSWORD = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*://[^\s/@]*:[^\s/@]*@[^\s;,]*')


def mask_text(text):
    """``text`` with the password of every URL in it replaced."""
    return _URL_WITH_PASSWORD.sub(lambda match: mask_password(match.group(0)), text)


def mask_secrets(value, name=''):
    """A copy of ``value`` (nested dicts and lists too) with secrets masked.

    A value whose setting ``name`` looks secret is masked whole; passwords in
    URLs are masked wherever they appear.
    """
    if isinstance(value, dict):
        return {key: mask_secrets(item, str(key)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item, name) for item in value]
    if name and SECRET_NAME.search(name) and value not in (None, '', MASK):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    return value
