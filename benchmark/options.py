"""The one rule for options (models, attacks, defenses, detectors): every option a component
takes is declared once, as a field of a dataclass subclassing ``Options``, with its type,
its default and a one-line doc::

    @dataclass
    class PopularityOptions(Options):
        prior: float = option(10.0, "pseudo-examples at the global like-rate (preference)")

    settings = PopularityOptions.parse("model popularity", {"prior": 5})   # typed: settings.prior

An unknown option is an error naming the component, the option, a close match when there
is one, and the valid names (a misspelt option is never silently ignored). ``describe()``
lists the declarations (name, type, default, doc) for ``recrobust list``.
"""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, Iterable, Mapping


def option(default: Any = None, doc: str = "") -> Any:
    """A declared option: its default (a list or dict default is copied for each instance)
    and a one-line doc."""
    meta = {"doc": doc}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def parse_pairs(pairs: Iterable[str] | None, flag: str) -> dict:
    """Command-line ``key=value`` pairs -> options, values parsed as JSON when they parse
    (numbers, true, lists), else kept as text; `flag` names the option in errors."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} expects key=value, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def unknown_options_message(owner: str, unknown: Iterable[str], known: Iterable[str]) -> str:
    """One line: '<owner>: unknown option 'x' (did you mean 'y'?); valid options: a, b'."""
    known = sorted(known)
    parts = []
    for name in sorted(unknown):
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    noun = "option" if len(parts) == 1 else "options"
    return f"{owner}: unknown {noun} {', '.join(parts)}; valid options: {', '.join(known) or '(none)'}"


def check_options(owner: str, known: Iterable[str], given: Mapping) -> None:
    """ValueError (unknown_options_message) when `given` holds a name not in `known`."""
    known = list(known)
    unknown = set(given) - set(known)
    if unknown:
        raise ValueError(unknown_options_message(owner, unknown, known))


@dataclass
class Options:
    """Base of a component's declared options (subclass it as a ``@dataclass`` whose fields
    are ``option(...)``s; ``Options`` itself declares none). Instances are read as attributes (``settings.prior``), or by name
    (``settings["prior"]``, ``settings.get("prior")``) where code reads options generically."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def parse(cls, owner: str, given: Mapping | None = None):
        """The options `given` (a mapping of option names), the rest at their defaults; an
        unknown name is a ValueError naming `owner`, the option and the valid names."""
        given = dict(given or {})
        check_options(owner, cls.names(), given)
        return cls(**given)

    @classmethod
    def defaults(cls) -> dict:
        return cls().to_dict()

    def to_dict(self) -> dict:
        """Every option, by name, in declaration order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __getitem__(self, name: str) -> Any:
        if name not in self.names():
            raise KeyError(name)
        return getattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name) if name in self.names() else default

    @classmethod
    def describe(cls) -> list[dict]:
        """The declarations: [{"name", "type", "default", "doc"}] in declaration order."""
        return [{"name": f.name, "type": _type_name(f), "default": _default(f), "doc": f.metadata.get("doc", "")}
                for f in fields(cls)]


def _type_name(f: Field) -> str:
    t = f.type
    return t if isinstance(t, str) else getattr(t, "__name__", str(t))


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None
