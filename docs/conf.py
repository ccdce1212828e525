"""Sphinx configuration: MyST Markdown pages, the API reference from the docstrings (autodoc,
Google-style sections through napoleon), the furo theme. Built offline: no intersphinx inventory
and no web font is fetched (``make docs``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("MUJOCO_GL", "egl")

import rewardgen

project = "rewardgen"
author = "the rewardgen developers"
copyright = "2026, the rewardgen developers"
release = version = rewardgen.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "README.md"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # dataclass fields: a field list, not a second attribute entry
suppress_warnings = ["myst.header"]

html_theme = "furo"
html_title = f"rewardgen {release}"
html_static_path: list[str] = []
