"""Profile attacks: edit a user's history (swap / insert / delete entries, flip ratings)
within a budget of k edits, searched greedily on the model's scores (black-box) or guided
by gradients on item embeddings (HotFlip-style). One semantic threat model for every
recommender: LLM models re-render the edited profile to text inside score()."""
