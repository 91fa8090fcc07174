"""What counts as content in transcribed speech: backchannels and fillers ("yeah", "mm-hm",
"right, okay") carry none, placeholders count as one word. Shared by segmentation (which drops
backchannel units) and interview context (which skips backchannel prompts)."""

from __future__ import annotations

import re

from pipeline.offsets import PLACEHOLDER

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?|\d+")


# Words that carry no content on their own in speech: backchannels, fillers, discourse
# markers. A unit made only of these ("Yeah, right, okay.", "Mm-hm, I know.") is dropped.
BACKCHANNELS = frozenset(
    """
    yeah yes yep yup ya no nope nah ok okay alright right sure mm mmm mhm hm hmm uh um er erm ah
    oh ooh aha huh uhhuh hmhm mmhm mm-hm uh-huh well so and but like i know see yeah-yeah
    absolutely definitely exactly totally true indeed fine good great lovely cool brilliant thanks
    thank you cheers sorry pardon god gosh wow really course of mean you sort kind think guess
    """.split()
)


def is_backchannel(text: str) -> bool:
    """True when every word of `text` is a backchannel or filler (or it has no words)."""
    words = [w.lower() for w in _WORD.findall(PLACEHOLDER.sub(" ", text))]
    return all(w.replace("\u2019", "'") in BACKCHANNELS or w.replace("-", "") in BACKCHANNELS for w in words)


def content_words(text: str) -> int:
    """Words that count towards `min_words`: placeholders count as one word each."""
    return len(_WORD.findall(PLACEHOLDER.sub(" x ", text)))
