"""Named, versioned prompt templates for the causal-lm recommender (TALLRec-style).

A prompt wraps the two rendered texts (benchmark.rendering: profile text, candidate text)
in an instruction and asks for a Yes/No answer:

    head + PROFILE + middle + CANDIDATE + tail  -> next token "Yes" or "No"

Where the tokenizer has a chat template, head/middle/tail come from it (system + user turn,
then the assistant's turn is opened); otherwise from a plain instruction format. The five
pieces are tokenised separately and concatenated, so that (a) every token belongs to one
piece (the span map of the prompt: attacks on the profile or the candidate keep their
scope, and token gradients map back to characters), and (b) the prefix head + PROFILE is
the same token sequence whatever the candidate, so ranking can reuse its KV cache.
Change a template's output -> bump its version.
"""

from __future__ import annotations

from dataclasses import dataclass

_P = "\x00PROFILE\x00"
_C = "\x00CANDIDATE\x00"


@dataclass(frozen=True)
class PromptPieces:
    head: str
    middle: str
    tail: str


@dataclass(frozen=True)
class PromptRendering:
    """The whole prompt as one string, with where the profile and candidate texts sit in it."""

    text: str
    profile_span: tuple[int, int]
    candidate_span: tuple[int, int]

    def span_map(self) -> dict:
        return {"profile": list(self.profile_span), "candidate": list(self.candidate_span)}


@dataclass(frozen=True)
class PromptTemplate:
    name: str  # versioned
    system: str
    instruction: str  # before the profile
    candidate_intro: str  # between the profile and the candidate
    question: str  # after the candidate
    answer_yes: str = "Yes"
    answer_no: str = "No"

    def pieces(self, tokenizer) -> PromptPieces:
        """head/middle/tail for this tokenizer: its chat template where it has one."""
        user = f"{self.instruction}\n{_P}\n{self.candidate_intro}\n{_C}\n{self.question}"
        if getattr(tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
            try:
                text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # some templates refuse a system turn: fold it into the user turn
                messages = [{"role": "user", "content": f"{self.system}\n\n{user}"}]
                text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{self.system}\n\n### Instruction:\n{user}\n\n### Response:\n"
        head, rest = text.split(_P)
        middle, tail = rest.split(_C)
        return PromptPieces(head, middle, tail)

    def render(self, tokenizer, profile_text: str, candidate_text: str) -> PromptRendering:
        p = self.pieces(tokenizer)
        start = len(p.head)
        cstart = start + len(profile_text) + len(p.middle)
        text = p.head + profile_text + p.middle + candidate_text + p.tail
        return PromptRendering(text, (start, start + len(profile_text)), (cstart, cstart + len(candidate_text)))


PROMPTS: dict[str, PromptTemplate] = {
    t.name: t
    for t in (
        PromptTemplate(
            name="tallrec-yesno-v1",
            system="You are a recommender system. Answer Yes or No.",
            # Short on purpose: every prompt token costs a forward pass on CPU.
            instruction="Will the user like the candidate item (rate it 4 or more)? The user's ratings, oldest first:",
            candidate_intro="Candidate item:",
            question="Will the user like it? Answer Yes or No.",
        ),
    )
}
DEFAULT_PROMPT = "tallrec-yesno-v1"


def get_prompt(name: str) -> PromptTemplate:
    try:
        return PROMPTS[name]
    except KeyError:
        raise KeyError(f"unknown prompt template {name!r}; known: {', '.join(sorted(PROMPTS))}") from None
