"""
The Aleatoria documentation, built with Sphinx (furo) by `make docs`,
warnings as errors; the API reference beside it (api/) is pydoctor's,
from the docstrings (epytext, as Twisted's).
"""

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE.parent), str(HERE / "_ext")]

from aleatoria import __version__  # noqa: E402

project = "Aleatoria"
author = "The Aleatoria developers"
copyright = "2026, the Aleatoria developers"
version = release = __version__

extensions = [
    "aleatoria_reference",
]
exclude_patterns = ["_build"]
nitpicky = True
html_theme = "furo"
html_title = f"Aleatoria {version}"
