"""Pluggable recommenders behind one fit/score interface (see recommenders.base)."""

from recommenders.base import Capabilities, Recommender

__all__ = ["Capabilities", "Recommender"]
