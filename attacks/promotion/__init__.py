"""Cross-user item-text promotion (a seller's evasion attack on text recommenders).

A seller controls one item's catalog text (title and attributes). The attack rewrites it
once, within a word budget, so that the item ranks higher for many users at once; the
model is not retrained, and the one rewritten text is what every user's ranking sees.
Measured over held-out real users who never interacted with the target (exposure@K: the
share of them with the target in their top K), as RecTextAttack (ACL 2024) does.

It belongs to the poisoning threat model's family of target-item attacks (same target
protocol, same per-(user, target) metrics and board), but edits text instead of
injecting users. Modules: `base` (the interface and result, light), `protocol` (the
attacker / held-out users, ranks under an edited item text), `goal` (the TextAttack goal
function over many users, a beam search that keeps its best), `item_text` (the attack:
goal + constraints + transformation + search per target).
"""
