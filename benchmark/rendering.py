"""Text rendering of profiles and candidates through named, versioned templates.

A rendering keeps a span map: which characters of the text belong to which history
entry and which to the candidate, so that attacks can be confined to a scope
("history": what a user controls; "item": what a seller controls).
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field

import pandas as pd

from benchmark.profiles import Interaction, Profile

_TAG = re.compile(r"<[^>]*>?")
_SPACE = re.compile(r"\s+")
MAX_TITLE_CHARS = 160


def clean_title(raw: object) -> str | None:
    """A usable title, or None. Strips HTML tags/entities (Amazon 2018 metadata has
    titles that are HTML fragments) and rejects what is left if it is empty or markup."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)) or raw is pd.NA:
        return None
    text = html.unescape(_TAG.sub(" ", str(raw)))
    text = _SPACE.sub(" ", text).strip()
    if not text or any(ch in text for ch in "<>{}") or not any(ch.isalnum() for ch in text):
        return None
    if len(text) > MAX_TITLE_CHARS:
        text = text[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return text


def fallback_title(item_id: str, attributes: dict[str, str]) -> str:
    """Stated fallback for items with no usable title: the id plus the best attribute we have."""
    for key in ("brand", "categories", "genres"):
        value = clean_title(attributes.get(key))
        if value:
            return f"untitled item {item_id} ({key}: {value})"
    return f"untitled item {item_id}"


@dataclass(frozen=True)
class ItemText:
    title: str
    tags: str  # short attribute string (genres or categories), may be ""
    has_title: bool


class Catalog:
    """Item id -> display text, computed once per dataset."""

    def __init__(self, items: pd.DataFrame):
        self._items = items
        self._cache: dict[str, ItemText] = {}

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._items.index

    def text(self, item_id: str) -> ItemText:
        hit = self._cache.get(item_id)
        if hit is not None:
            return hit
        attrs: dict[str, str] = {}
        if item_id in self._items.index:
            row = self._items.loc[item_id]
            attrs = {k: v for k, v in row.items() if isinstance(v, str)}
        title = clean_title(attrs.get("title"))
        tags = clean_title(attrs.get("genres")) or clean_title(attrs.get("categories")) or ""
        value = ItemText(title or fallback_title(item_id, attrs), tags, title is not None)
        self._cache[item_id] = value
        return value


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str  # "history" or "candidate"
    index: int  # history position (0 = oldest shown); -1 for the candidate
    item_id: str


@dataclass(frozen=True)
class Rendering:
    """profile_text and candidate_text are the two inputs text models see (a sentence pair);
    text is the single-string form (profile_text + separator + candidate_text).
    Spans index into `text`."""

    profile_text: str
    candidate_text: str
    text: str
    spans: tuple[Span, ...] = field(default=())

    def span_map(self) -> dict:
        return {
            "history": [
                {"start": s.start, "end": s.end, "index": s.index, "item_id": s.item_id}
                for s in self.spans
                if s.kind == "history"
            ],
            "candidate": next(
                {"start": s.start, "end": s.end, "item_id": s.item_id} for s in self.spans if s.kind == "candidate"
            ),
            "profile_chars": [0, len(self.profile_text)],
        }


@dataclass(frozen=True)
class Template:
    name: str  # versioned: change the output -> bump the version
    header_rated: str
    header_implicit: str
    separator: str
    show_tags: bool
    show_ratings: bool
    entry_joiner: str = "; "

    def item_phrase(self, text: ItemText) -> str:
        return f"{text.title} [{text.tags}]" if self.show_tags and text.tags else text.title

    def entry(self, catalog: Catalog, h: Interaction) -> str:
        phrase = self.item_phrase(catalog.text(h.item_id))
        if self.show_ratings and not math.isnan(h.rating):
            return f"{phrase} {h.rating:g}/5"
        return phrase

    def render(self, catalog: Catalog, profile: Profile, candidate: str) -> Rendering:
        rated = any(not math.isnan(h.rating) for h in profile.history)
        header = self.header_rated if (rated and self.show_ratings) else self.header_implicit
        parts = [header]
        spans: list[Span] = []
        pos = len(header)
        if not profile.history:
            empty = " (no history)"
            parts.append(empty)
            pos += len(empty)
        for i, h in enumerate(profile.history):
            sep = " " if i == 0 else self.entry_joiner
            entry = self.entry(catalog, h)
            start = pos + len(sep)
            parts += [sep, entry]
            pos = start + len(entry)
            spans.append(Span(start, pos, "history", i, h.item_id))
        profile_text = "".join(parts) + "."
        candidate_text = self.item_phrase(catalog.text(candidate))
        text = profile_text + self.separator + candidate_text
        cstart = len(profile_text) + len(self.separator)
        spans.append(Span(cstart, cstart + len(candidate_text), "candidate", -1, candidate))
        return Rendering(profile_text, candidate_text, text, tuple(spans))


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            name="rated-history-v1",
            header_rated="Rated, oldest first:",
            header_implicit="Interacted with, oldest first:",
            separator=" Candidate: ",
            show_tags=True,
            show_ratings=True,
        ),
        Template(
            name="titles-only-v1",
            header_rated="Watched or bought, oldest first:",
            header_implicit="Watched or bought, oldest first:",
            separator=" Candidate: ",
            show_tags=False,
            show_ratings=False,
        ),
    )
}
DEFAULT_TEMPLATE = "rated-history-v1"


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        raise KeyError(f"unknown template {name!r}; known: {', '.join(sorted(TEMPLATES))}") from None


class Renderer:
    """Renders (profile, candidate) pairs for one catalog with one template."""

    def __init__(self, items: pd.DataFrame, template: str = DEFAULT_TEMPLATE):
        self.catalog = Catalog(items)
        self.template = get_template(template)

    def render(self, profile: Profile, candidate: str) -> Rendering:
        return self.template.render(self.catalog, profile, candidate)

    def candidate_text(self, item_id: str) -> str:
        return self.template.item_phrase(self.catalog.text(item_id))
