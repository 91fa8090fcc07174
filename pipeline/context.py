"""What surrounds a unit: its turn (the kept segments of the same speaker turn) and, in an
interview, the interviewer's question it answers. Shared by theme discovery (which clusters a
segment together with its turn) and coding (which reads a segment with its turn and question).
Uses only pseudonymised text and the embeddings already made.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from pipeline.speech import content_words, is_backchannel
from pipeline.vectors import unit_rows

MIN_PROMPT_WORDS = 4  # an interviewer turn without "?" frames an answer from this many words


def preceding_questions(segments: pd.DataFrame, turns: pd.DataFrame) -> list[str]:
    """Per segment, the text of the interviewer's last question before the segment's turn in
    its transcript ("" when there is none yet). `turns`: the pseudonymised turns.

    Backchannels ("Mm-hm.", "Right.", "[laughs]") and other short prompts without a question
    mark are not questions: they would hide the question the participant is still answering
    (many participant turns follow one)."""
    asked = turns[(turns["role"] == "interviewer") & turns["text"].map(is_question)]
    asked = asked.sort_values(["transcript_id", "turn_id"])
    by_transcript = {
        t: (g["turn_id"].to_numpy(), g["text"].tolist()) for t, g in asked.groupby("transcript_id")
    }
    out = []
    for t, turn in zip(segments["transcript_id"], segments["turn_id"], strict=True):
        turn_ids, texts = by_transcript.get(t, (np.array([], dtype=np.int64), []))
        i = int(np.searchsorted(turn_ids, turn, side="left")) - 1
        out.append(texts[i] if i >= 0 else "")
    return out


def is_question(text: str) -> bool:
    """An interviewer turn that can frame an answer: not a backchannel, and either a question
    or at least `MIN_PROMPT_WORDS` words ("Tell me about the referral process.")."""
    return not is_backchannel(text) and ("?" in text or content_words(text) >= MIN_PROMPT_WORDS)


def _turn_keys(segments: pd.DataFrame) -> pd.Series:
    return segments["transcript_id"].astype(str) + "\x1f" + segments["turn_id"].astype(str)


def turn_means(segments: pd.DataFrame, embeddings: np.ndarray) -> np.ndarray:
    """Per segment, the unit mean embedding of the kept segments of its turn."""
    emb = unit_rows(np.asarray(embeddings, dtype=np.float64))
    codes, uniq = pd.factorize(_turn_keys(segments))
    sums = np.zeros((len(uniq), emb.shape[1]))
    np.add.at(sums, codes, emb)
    return unit_rows(sums)[codes]


def with_turn_context(
    segments: pd.DataFrame, embeddings: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts and embeddings that carry each segment's turn as context.

    Human coders code passages (often a whole answer); a sentence on its own rarely shows
    the code. Each segment is represented by [its own embedding, the mean embedding of the
    kept segments of its turn] and by its text followed by the turn's text. Uses only the
    pseudonymised segments, and no new embeddings. Returns (texts, [own | turn] embeddings,
    turn embeddings).
    """
    ctx = turn_means(segments, embeddings)
    texts = [f"{t} || {turn}" for t, turn in zip(segments["text"], turn_texts(segments), strict=True)]
    return texts, np.hstack([unit_rows(np.asarray(embeddings, dtype=np.float64)), ctx]), ctx


def turn_texts(segments: pd.DataFrame) -> list[str]:
    """Per segment, the text of the kept segments of its turn, joined."""
    keys = _turn_keys(segments)
    return keys.map(segments.groupby(keys.to_numpy(), sort=False)["text"].agg(" ".join)).tolist()


def question_vectors(texts: list[str], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray | None:
    """Embeddings of the questions, zeros where a segment has none; None when no segment has
    one. Each distinct question is embedded once."""
    uniq = sorted({t for t in texts if t.strip()})
    if not uniq:
        return None
    vectors = dict(zip(uniq, np.asarray(embed(uniq), dtype=np.float64), strict=True))
    blank = np.zeros(len(next(iter(vectors.values()))))
    return np.vstack([vectors.get(t, blank) for t in texts])


def coding_inputs(
    segments: pd.DataFrame,
    embeddings: np.ndarray,
    *,
    context: str,
    questions: tuple[list[str], np.ndarray] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Each segment's text and features for the few-shot coder, with its context:
    `none` (the segment alone), `turn` ([own | turn], see `with_turn_context`) or
    `turn+question` ([own | turn | question]; the turn alone when `questions` is None)."""
    if context == "none":
        return segments["text"].tolist(), np.asarray(embeddings)
    texts, features, _ = with_turn_context(segments, embeddings)
    if context == "turn+question" and questions is not None:
        q_texts, q_emb = questions
        texts = [f"{t} || {q}" for t, q in zip(texts, q_texts, strict=True)]
        features = np.hstack([features, unit_rows(np.asarray(q_emb, dtype=np.float64))])
    return texts, features
