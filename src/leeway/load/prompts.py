"""The text of a replayed request: a system prompt per prefix (shared, as a tenant's system prompt
is) and a user message of common English words, about one token each, asking for a long answer so
the model writes up to ``max_output_tokens``. Sizes are approximate: the server's own counts (the
usage it reports) are what the report and the twin use."""

from __future__ import annotations

import random

_TEXT = (
    "the of and to in is was he for it with as his on be at by had are but from or have an they "
    "which one you were her all she there would their we him been has when who will more no if "
    "out so said what up its about into than them can only other new some could time these two "
    "may then do first any my now such like our over man me even most made after also did many "
    "before must through back years where much your way well down should because each just those "
    "people how too little state good very make world still own see men work long get here "
    "between both life being under never day same another know while last might us great old "
    "year off come since against go came right used take three"
)
_WORDS = _TEXT.split()
TEMPLATE_TOKENS = 12  # what a chat template adds around a system and a user message, about
_ASK = "Continue this text with a long, detailed story:"  # about 10 tokens


def system_prompt(prefix: str) -> str:
    """The shared system prompt of prefix ``prefix`` (about 20 tokens)."""
    return f"You are the writing assistant {prefix}. Write at length, in plain prose, and never stop early."


def user_text(prompt_tokens: int, rng: random.Random) -> str:
    """A user message that, after the system prompt and the template, makes about
    ``prompt_tokens`` prompt tokens in all."""
    words = max(1, prompt_tokens - TEMPLATE_TOKENS - 20 - 10)
    return f"{_ASK} " + " ".join(rng.choices(_WORDS, k=words))
