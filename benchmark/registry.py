"""One registry pattern for every extension point: name -> ``module:attr``, from built-in
catalogs and from installed plug-ins.

Each extension point (recommenders, attacks, defenses, datasets) owns one ``Registry``.
Built-ins are registered as import paths (``register(name, "pkg.mod:Class", **info)``) so
that listing them imports nothing heavy; plug-ins are installed packages that declare an
entry point in the registry's group, e.g. in their ``pyproject.toml``::

    [project.entry-points."recrobust.attacks"]
    my-attack = "my_package.attack:MyAttack"

A plug-in cannot shadow a built-in (the built-in wins). Entry points are read on every
look-up, so a package installed (or put on ``sys.path``) after import is seen too.

This module is part of the core: it imports nothing from recommenders/ or attacks/.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

ENTRY_POINT_PREFIX = "recrobust."


@dataclass(frozen=True)
class Entry:
    """One registered name: its import path, where it comes from, and listing metadata."""

    name: str
    path: str  # "module.path:Attr"
    origin: str = "builtin"  # "builtin", or "plugin (<distribution>)"
    info: dict = field(default_factory=dict)  # columns shown by `recrobust list`

    @property
    def plugin(self) -> bool:
        return self.origin != "builtin"


def import_path(path: str) -> Any:
    """The object named by ``module.path:Attr`` (dotted attributes allowed); a ValueError
    naming the path when the module or the attribute is missing."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{path!r}: expected 'module.path:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{path!r}: cannot import module {module_name!r} ({err})") from err
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"{path!r}: module {module_name!r} has no attribute {attr!r}")
    return obj


class Registry:
    """Names -> import paths for one kind of extension (see the module docstring).

    kind: what the names are, for messages ("attack", "defense", ...).
    group: the entry-point group plug-ins use (``recrobust.<kinds>``).
    catalogs: light modules holding only ``register(...)`` calls, imported on first use.
    accept_paths: whether ``module:Attr`` is accepted where a name is expected.
    check: called with every resolved object; raises ValueError when it is not of the
        right type (e.g. not an Attack subclass).
    """

    def __init__(self, kind: str, group: str, catalogs: Iterable[str] = (), accept_paths: bool = False,
                 check: Callable[[str, Any], None] | None = None):
        self.kind = kind
        self.group = group
        self.catalogs = tuple(catalogs)
        self.accept_paths = accept_paths
        self.check = check
        self._builtin: dict[str, Entry] = {}
        self._catalogs_loaded = False

    # -- registration ------------------------------------------------------------
    def register(self, name: str, path: str, **info) -> None:
        """Register a built-in (or a test's) name; a later call for the same name replaces it."""
        if ":" not in path:
            raise ValueError(f"{self.kind} {name!r}: path {path!r} must be 'module.path:Attr'")
        self._builtin[name] = Entry(name, path, "builtin", dict(info))

    def unregister(self, name: str) -> None:
        self._builtin.pop(name, None)

    def _load_catalogs(self) -> None:
        if self._catalogs_loaded:
            return
        self._catalogs_loaded = True
        for module in self.catalogs:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as err:
                if err.name != module:
                    raise

    def plugins(self) -> dict[str, Entry]:
        """Installed plug-ins of this group (read now, not cached)."""
        found = {}
        for ep in entry_points(group=self.group):
            dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
            found.setdefault(ep.name, Entry(ep.name, ep.value, f"plugin ({dist})"))
        return found

    def entries(self) -> dict[str, Entry]:
        """Every name: plug-ins, overridden by built-ins of the same name."""
        self._load_catalogs()
        merged = self.plugins()
        merged.update(self._builtin)
        return merged

    def names(self) -> list[str]:
        return sorted(self.entries())

    def __contains__(self, name: str) -> bool:
        return name in self.entries()

    def entry(self, name: str) -> Entry:
        entries = self.entries()
        if name not in entries:
            hint = ", or give 'module.path:ClassName'" if self.accept_paths else ""
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(entries)) or '(none)'}{hint}")
        return entries[name]

    # -- resolution --------------------------------------------------------------
    def resolve(self, name: str, fallback: str | None = None) -> Any:
        """The object for a registered name, a plug-in, or (accept_paths) ``module:Attr``;
        `fallback` (an import path) is used when the name is unknown."""
        entries = self.entries()
        if name in entries:
            obj = import_path(entries[name].path)
        elif self.accept_paths and ":" in name:
            obj = import_path(name)
        elif fallback:
            obj = import_path(fallback)
        else:
            self.entry(name)  # raises the "unknown" error
        if self.check is not None:
            self.check(name, obj)
        return obj

    def create(self, name: str, **options) -> Any:
        return self.resolve(name)(**options)
