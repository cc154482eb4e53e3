"""Dropping a module into a package's search path for one test: how a new scheduler or graph (one
file each) is shown to need no other change."""
from __future__ import annotations

import importlib
import sys


def drop_module(monkeypatch, tmp_path, package: str, name: str, source: str) -> str:
    """Write <tmp_path>/<name>.py and put tmp_path on `package`'s __path__ (undone after the test; a
    module of that name imported before is forgotten first). Returns `name`."""
    pkg = importlib.import_module(package)
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.setattr(pkg, "__path__", [*pkg.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, f"{package}.{name}", raising=False)
    return name
