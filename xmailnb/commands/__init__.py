"""Command modules beyond the core ones in :mod:`xmailnb.cli`.

Each module here defines ``register(sub, common, lang)``: it adds its
sub-parser (with ``parents=[common]`` for ``--mailroot``/``--lang``) and calls
``set_defaults(func=run)`` where ``run(args, out) -> int``.  Module-level
imports must stay light: the heavy work is imported inside ``run``.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__ = ["modules", "module_for"]


def modules() -> list[ModuleType]:
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{__name__}.{name}") for name in found]


def module_for(command: str) -> ModuleType | None:
    """The module of *command* (``practice-ca`` -> ``practice_ca``), or ``None``."""
    name = command.replace("-", "_")
    if not name.isidentifier() or name.startswith("_"):
        return None
    if name not in {m.name for m in pkgutil.iter_modules(__path__)}:
        return None
    return importlib.import_module(f"{__name__}.{name}")
