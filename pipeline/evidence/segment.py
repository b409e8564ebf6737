"""Danish sentence segmentation: `spacy.blank("da")` plus two registered components.

- `evidens_sentences`: a sentence starts at every line break (so each bullet item is its own sentence) and
  after ".", "!" or "?" when the next word is not lower-case. The Danish tokenizer keeps abbreviations such
  as fx., bl.a., ca., evt., pct., nr., jf. and m.v. as one token, so they never end a sentence.
- `evidens_headings`: sentences that are only a lead-in ("Vi kan give følgende råd:", "Samtale 8:") or a
  sub-heading line ("Organisering", "Jobdansk og sprogmentor") go into `doc.spans["headings"]`; they are kept
  as context and never offered as evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache

import numpy
import spacy
from spacy.attrs import SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Span

from pipeline.records import SECTION_NAMES, Effort, Sentence

_SENTENCE_END = {".", "!", "?", "…", "?”", "!”"}
_BULLET_MARKER = re.compile(r"^\s*(?:[•·▪◦●*\-–]|o(?=\s)|\d{1,2}[.)](?=\s))\s*")
_LEAD_IN_MAX_WORDS = 12
_SUBHEADING_MAX_WORDS = 10
HEADINGS_KEY = "headings"
# A "sentence" longer than this (a paragraph with no full stops, a scraped blob) is cut into pieces; real
# sentences are shorter (the corpus's longest is 1,147 characters, a list run together in the report).
MAX_SENTENCE_CHARS = 1200


def _starts_lower(token_text: str) -> bool:
    return token_text[:1].islower()


@Language.component("evidens_sentences")
def set_sentence_starts(doc: Doc) -> Doc:
    """Sentence starts at line breaks and after sentence-final punctuation before a non-lower-case word."""
    text = doc.text  # Doc.text is rebuilt on every access
    starts = numpy.full((len(doc), 1), -1, dtype="int32")  # 1: starts a sentence, -1: does not
    previous = None
    for token in doc:
        if token.is_space:
            continue
        if previous is None:
            starts[token.i] = 1
        else:
            line_break = "\n" in text[previous.idx + len(previous) : token.idx]
            after_end = previous.text in _SENTENCE_END and not _starts_lower(token.text)
            starts[token.i] = 1 if line_break or after_end else -1
        previous = token
    if len(doc):
        starts[0] = 1
    # One array write: setting token.is_sent_start re-checks the whole doc on every call.
    return doc.from_array([SENT_START], starts.astype("uint64"))  # -1 wraps around, as spaCy expects


def _is_heading(sentence: Span, doc_text: str) -> bool:
    text = sentence.text.strip()
    words = len(text.split())
    if text.endswith(":"):
        return words <= _LEAD_IN_MAX_WORDS
    start = sentence.start_char
    end = start + len(sentence.text.rstrip())  # spans carry the line break that follows them
    line_start = doc_text.rfind("\n", 0, start) + 1
    line_end = doc_text.find("\n", end)
    whole_line = (
        not doc_text[line_start:start].strip()
        and not doc_text[end : len(doc_text) if line_end < 0 else line_end].strip()
    )
    return (
        whole_line
        and words <= _SUBHEADING_MAX_WORDS
        and not _BULLET_MARKER.match(text)
        and not text.endswith((".", "!", "?", ";", ",", "”", '"', ")"))
    )


@Language.component("evidens_headings")
def mark_headings(doc: Doc) -> Doc:
    text = doc.text
    doc.spans[HEADINGS_KEY] = [s for s in doc.sents if _is_heading(s, text)]
    return doc


@cache
def danish_pipeline() -> Language:
    """spacy.blank("da") with the evidens components, built by name."""
    nlp = spacy.blank("da")
    nlp.add_pipe("evidens_sentences")
    nlp.add_pipe("evidens_headings")
    return nlp


def _sentences_of(effort_id: str, section: str, doc: Doc) -> Iterator[Sentence]:
    headings = {(s.start_char, s.end_char) for s in doc.spans[HEADINGS_KEY]}
    doc_text = doc.text
    index = 0
    for span in doc.sents:
        text = span.text
        start = span.start_char + (len(m.group(0)) if (m := _BULLET_MARKER.match(text)) else 0)
        end = span.end_char - (len(text) - len(text.rstrip()))
        for piece_start, piece_end in bounded_pieces(doc_text, start, end):
            yield Sentence(
                effort_id=effort_id,
                section=section,
                index=index,
                text=doc_text[piece_start:piece_end],
                start=piece_start,
                end=piece_end,
                is_heading=(span.start_char, span.end_char) in headings,
            )
            index += 1


def bounded_pieces(
    text: str, start: int, end: int, limit: int = MAX_SENTENCE_CHARS
) -> Iterator[tuple[int, int]]:
    """text[start:end] as spans of at most `limit` characters, cut at the last space before the limit (or at
    the limit, in a run without spaces): the work per sentence downstream (embedding is quadratic in its
    length) stays bounded, and no text is lost."""
    while end - start > limit:
        cut = text.rfind(" ", start + 1, start + limit + 1)
        cut = cut if cut > start else start + limit
        piece_end = len(text[start:cut].rstrip()) + start
        if piece_end > start:
            yield start, piece_end
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        yield start, end


def segment_efforts(efforts: Iterable[Effort], sections: Iterable[str] = SECTION_NAMES) -> Iterator[Sentence]:
    """Sentence records for the given sections of each effort, in page order."""
    wanted = tuple(sections)
    nlp = danish_pipeline()
    jobs = [
        (effort.effort_id, name, getattr(effort.sections, name))
        for effort in efforts
        for name in wanted
        if getattr(effort.sections, name).strip()
    ]
    docs = nlp.pipe(text for _, _, text in jobs)
    for (effort_id, name, _), doc in zip(jobs, docs, strict=True):
        yield from _sentences_of(effort_id, name, doc)


def segment_effort(effort: Effort) -> list[Sentence]:
    return list(segment_efforts([effort]))
