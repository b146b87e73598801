"""Checks of a poisoning attack's suite options, without running anything (suite validation
reports every problem at once, naming the option)."""

from __future__ import annotations

from attacks.poisoning.base import PoisoningOptionError, check_fraction


def option_problems(options: dict, attack: str | None = None) -> list[str]:
    """Problems with a poisoning-family attack's options; `attack` (its name) adds the
    attack's own checks where it has them (item-promotion's users, word_budget, ...)."""
    out = []
    if attack is not None:
        from attacks.registry import resolve

        try:
            own = getattr(resolve(attack), "option_problems", None)
        except (KeyError, ValueError, ImportError):  # not ours to check (a test catalog's name)
            own = None
        if own is not None:  # promotion attacks: no fake users, their own options
            cell = {"targets", "target_items", "unpopular_share"}
            return own({k: v for k, v in options.items() if k not in cell}) + \
                option_problems({k: v for k, v in options.items() if k in cell})
    if "fake_users" in options:
        try:
            check_fraction(options["fake_users"])
        except PoisoningOptionError as err:
            out.append(f"options/fake_users: {err}")
    for key in ("filler", "targets"):
        v = options.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            out.append(f"options/{key}: must be a whole number >= 1, got {v!r}")
    items = options.get("target_items")
    if items is not None and (not isinstance(items, list) or not items):
        out.append(f"options/target_items: must be a non-empty list of item ids, got {items!r}")
    ff = options.get("flag_fraction")
    if ff is not None and (isinstance(ff, bool) or not isinstance(ff, (int, float)) or not 0 < ff < 1):
        out.append(f"options/flag_fraction: must be in (0, 1), got {ff!r}")
    return out
