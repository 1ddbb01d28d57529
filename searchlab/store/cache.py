"""The one directory where searchlab keeps what it can rebuild (table databases, encodings)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """$SEARCHLAB_CACHE_DIR, else $XDG_CACHE_HOME/searchlab, else ~/.cache/searchlab (joined with `parts`)."""
    env = os.environ.get("SEARCHLAB_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "searchlab"
    return base.joinpath(*parts)
