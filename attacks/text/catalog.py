"""Names of the text attacks for the registry (no heavy imports here)."""

from attacks.registry import register

_TEXT = "text-input models (cross-encoder, two-tower)"
_PATH = "attacks.text.attack"

register("deepwordbug", f"{_PATH}:DeepWordBug", "text", _TEXT, "-")
register("pruthi", f"{_PATH}:Pruthi", "text", _TEXT, "-")
register("textbugger", f"{_PATH}:TextBugger", "text", _TEXT,
         "USE (offline: MiniLM SBERT), counter-fitted embeddings (opt-in; default MiniLM)")
register("pwws", f"{_PATH}:PWWS", "text", _TEXT, "WordNet data (NLTK or Debian wordnet-base)")
register("textfooler", f"{_PATH}:TextFooler", "text", _TEXT,
         "USE (offline: MiniLM SBERT), embeddings (MiniLM), POS tagger (offline: WordNet)")
register("bae", f"{_PATH}:BAE", "text", _TEXT,
         "hub model bert-base-uncased (masked LM; no offline substitute), USE (offline: MiniLM SBERT), POS (offline: WordNet)")
register("bert-attack", f"{_PATH}:BERTAttack", "text", _TEXT,
         "hub model bert-base-uncased (masked LM; no offline substitute), USE (offline: MiniLM SBERT)")
register("a2t", f"{_PATH}:A2T", "text", f"{_TEXT}; gradients",
         "model gradients, SBERT stsb-distilbert-base (offline: MiniLM), embeddings (MiniLM), POS (offline: WordNet)")
register("hotflip", f"{_PATH}:HotFlip", "text", f"{_TEXT}; gradients",
         "model gradients, embeddings (MiniLM), POS (offline: WordNet)")
