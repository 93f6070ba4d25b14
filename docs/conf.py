"""Sphinx configuration for the flower documentation.

Only the built-in alabaster theme and no third-party extensions are used, so
the documentation builds offline with nothing but Sphinx installed.
"""

project = 'flower'
author = 'the flower authors'
copyright = '2026, the flower authors. BSD 3-Clause License'

extensions = []

root_doc = 'index'
source_suffix = {'.rst': 'restructuredtext'}
exclude_patterns = ['_build', 'Thumbs.db', '.DS_Store']

language = 'en'
pygments_style = 'sphinx'
# Most literal blocks are shell sessions; Python and INI blocks say so.
highlight_language = 'none'

html_theme = 'alabaster'
html_title = 'flower documentation'
html_theme_options = {
    'description': 'Real-time monitor and web admin for Celery',
}
html_show_sourcelink = False
