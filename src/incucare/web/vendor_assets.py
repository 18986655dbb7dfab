"""Front-end libraries served from installed Python packages (offline-first: no CDN, nothing copied in).

``/static/vendor/plotly.min.js`` is the bundle that ships inside the ``plotly`` wheel pinned in
requirements.lock; pages load it with ``<script src="/static/vendor/plotly.min.js">``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def vendor_assets_dir() -> Path:
    """The folder of the installed plotly package that holds ``plotly.min.js``."""
    folder = Path(str(files("plotly") / "package_data"))
    if not (folder / "plotly.min.js").is_file():
        raise RuntimeError(f"plotly.min.js is missing from {folder}: reinstall with `make install`")
    return folder
