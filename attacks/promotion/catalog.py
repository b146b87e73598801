"""The promotion attack for `recrobust list attacks` (an import path only: no heavy imports)."""

from attacks.registry import register

register("item-promotion", "attacks.promotion.item_text:ItemTextPromotion", "poisoning",
         "text-input models, ranking task (one item-text rewrite scored over many users; no retraining)",
         "as its recipe (default deepwordbug: nothing)")
