"""Escaping for every place card and dataset text is rendered: Markdown cells, LaTeX text,
HTML, file names (the leaderboards, the plots and the poisoning tables share these)."""

from __future__ import annotations

import html
import re
from typing import Any


def escape_md(text: Any) -> str:
    """Markdown table cell: HTML-escaped (no raw tags) and Markdown specials backslashed."""
    s = html.escape(" ".join(str(text).split()), quote=False)
    return re.sub(r"([\\`*_{}\[\]#!|~])", r"\\\1", s)


_LATEX = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
          "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "<": r"\textless{}", ">": r"\textgreater{}",
          # the tables' own marks, in pdflatex-safe form
          "†": r"$^\dagger$", "‡": r"$^\ddagger$", "§": r"\S{}", "±": r"$\pm$", "–": "--", "∉": r"$\notin$",
          "⚠": "(!)", "ε": r"$\varepsilon$"}
_LATEX_RE = re.compile("[" + re.escape("".join(_LATEX)) + "]")


def escape_latex(text: Any) -> str:
    """LaTeX text: every special character neutralised, so \\input{...} prints as text."""
    return _LATEX_RE.sub(lambda m: _LATEX[m.group()], " ".join(str(text).split()))


def escape_html(text: Any) -> str:
    return html.escape(str(text), quote=True)


def slug(text: Any) -> str:
    """A file-name / label-safe form: lower case, runs of anything but [a-z0-9] as one "-"."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"
