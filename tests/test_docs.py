"""Checks on the Sphinx documentation in ``docs/``.

* The whole project must build with warnings turned into errors, so a broken
  cross reference, a malformed directive or a page missing from the toctree
  fails the test suite.
* ``docs/config.rst`` must have exactly one section per option defined in
  :mod:`flower.options` (Tornado's logging options included): no option left
  undocumented, no section for an option that does not exist.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / 'docs'
CONFIG_PAGE = DOCS / 'config.rst'

# Tornado defines ``--help`` on every option parser; it is not a setting.
NOT_DOCUMENTED = {'help'}

# An option section is a title that is nothing but the option name in
# double back-quotes, underlined on the next line.
_OPTION_TITLE = re.compile(r'^``([A-Za-z0-9_]+)``[ \t]*$')
_UNDERLINE = re.compile(r'^([=\-~^"\'`#*+.:_<>])\1*[ \t]*$')


def documented_options(text):
    """Return the option names used as section titles, in page order."""
    lines = text.splitlines()
    names = []
    for title, underline in zip(lines, lines[1:]):
        match = _OPTION_TITLE.match(title)
        if match and _UNDERLINE.match(underline) and len(underline.rstrip()) >= len(title.rstrip()):
            names.append(match.group(1))
    return names


def defined_options():
    import flower.options

    return set(flower.options.default_options.as_dict()) - NOT_DOCUMENTED


def test_sphinx_build_has_no_warnings(tmp_path):
    outdir = tmp_path / 'html'
    doctrees = tmp_path / 'doctrees'
    result = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-b', 'html',
         '-d', str(doctrees), str(DOCS), str(outdir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, (
        f'sphinx-build failed with status {result.returncode}\n'
        f'--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}'
    )
    for page in ('index', 'install', 'usage', 'config'):
        assert (outdir / f'{page}.html').is_file(), f'{page}.html was not built'


def test_every_option_is_documented_once():
    names = documented_options(CONFIG_PAGE.read_text(encoding='utf-8'))
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f'options documented more than once: {duplicates}'

    documented = set(names)
    defined = defined_options()
    assert documented - defined == set(), (
        f'docs/config.rst documents options that do not exist: {sorted(documented - defined)}'
    )
    assert defined - documented == set(), (
        f'options missing from docs/config.rst: {sorted(defined - documented)}'
    )


def test_every_option_has_a_reference_label():
    text = CONFIG_PAGE.read_text(encoding='utf-8')
    labels = set(re.findall(r'^\.\. _opt-([A-Za-z0-9_]+):[ \t]*$', text, re.MULTILINE))
    assert labels == set(documented_options(text))


@pytest.mark.parametrize('text, expected', [
    ('``port``\n^^^^^^^^\n', ['port']),
    ('``port``\n^^^\n', []),                      # underline too short
    ('``port`` and more\n^^^^^^^^^^^^^^^^^\n', []),
    ('Use ``port``.\n', []),
    ('``a_b``\n~~~~~~~\n\n``c``\n-----\n', ['a_b', 'c']),
])
def test_option_title_parser(text, expected):
    assert documented_options(text) == expected
