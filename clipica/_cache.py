"""Where clipica keeps things it builds once (the tiny model's weights)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$CLIPICA_CACHE`` if set, else the platform's user cache dir for clipica."""
    env = os.environ.get("CLIPICA_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("clipica"))
    path.mkdir(parents=True, exist_ok=True)
    return path
