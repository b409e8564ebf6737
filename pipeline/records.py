"""Typed records shared by all stages. Field names are a contract: later stages and their tests depend on them."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, HttpUrl, TypeAdapter

#: The answer scale, in its ordinal order (Nej < Delvist < Ja). Use this everywhere instead of sorting labels.
ANSWER_ORDER: tuple[str, ...] = ("Nej", "Delvist", "Ja")
Answer = Literal["Ja", "Delvist", "Nej"]
#: The points an answer scores on the pages' 0-5 test score scale.
SCORE_POINTS: dict[str, float] = {"Ja": 5.0, "Delvist": 2.5, "Nej": 0.0}
EffortKind = Literal["effort_page", "theme_page_part", "report"]
TestKind = Literal["evidence_test", "good_practice_test"]
SECTION_NAMES: tuple[str, ...] = ("description", "experiences", "organisation", "advice", "recommendation")
#: Each section's heading as the pages write it.
SECTION_TITLES: dict[str, str] = {
    "description": "Kommunens beskrivelse af indsatsen",
    "experiences": "Erfaringer og resultater",
    "organisation": "Krav til organisering",
    "advice": "Gode råd",
    "recommendation": "Ledelsens anbefaling",
}


_HTTP_URL = TypeAdapter(HttpUrl)
# A domain name (IDNs arrive as punycode), an IPv4 address or a bracketed IPv6 one: the URL standard lets
# "http://`/" or "http://{x}/" through, which name no server.
_HOST = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\]")


def http_url(value: str) -> str:
    """The URL as a browser reads it (the WHATWG URL standard, via pydantic), serialised: quotes, spaces and angle
    brackets percent-encoded, tabs and newlines dropped; ValueError unless it is an absolute http(s) URL whose
    host is a domain name or an IP address, so that a `javascript:` or `data:` URL never becomes a link."""
    url = _HTTP_URL.validate_python(value)
    if not _HOST.fullmatch(url.host or ""):
        raise ValueError(f"host {url.host!r} is not a domain name or IP address")
    return str(url)


def iso_date_or_time(value: str) -> str:
    """An ISO-8601 date (`2026-11-30`) or date and time (`2026-11-30T09:15:00+01:00`, `...Z`) in its canonical
    form; ValueError for anything else."""
    text = value.strip()
    if len(text) <= len("2026-11-30"):
        return date.fromisoformat(text).isoformat()
    return datetime.fromisoformat(text).isoformat()


HttpUrlText = Annotated[str, AfterValidator(http_url)]
IsoDateText = Annotated[str, AfterValidator(iso_date_or_time)]


class Sections(BaseModel):
    """The five free-text sections of an effort page; "" when the page has none."""

    description: str = ""
    experiences: str = ""
    organisation: str = ""
    advice: str = ""
    recommendation: str = ""


class AnswerRecord(BaseModel):
    """One self-assessed criterion: the item text as on the page and its answer."""

    item: str
    answer: Answer
    criterion_id: str = ""


class SelfAssessment(BaseModel):
    """One test (Evidenstest or God praksis test) for one target group."""

    kind: TestKind
    target_group: str | None = None
    score: float | None = None
    answers: list[AnswerRecord] = Field(default_factory=list)


class Effort(BaseModel):
    """One ingested page, or one municipality's part of a theme page."""

    effort_id: str
    source: str
    content_sha256: str
    kind: EffortKind
    municipality: str | None = None
    title: str = ""
    headline_score: float | None = None
    target_groups: list[str] = Field(default_factory=list)
    sections: Sections = Field(default_factory=Sections)
    tests: list[SelfAssessment] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    # Where the page lives and when it was fetched, where the input says so (pipeline/ingest/source.py); not
    # part of the content hash, so the effort id stays the same whether or not a URL is known.
    source_url: HttpUrlText | None = None
    retrieved_at: IsoDateText | None = None


#: Effort fields added after the first corpora were written: a record without them still loads.
EFFORT_FIELDS_ADDED_LATER: frozenset[str] = frozenset({"source_url", "retrieved_at"})


class Rejection(BaseModel):
    """An input that could not be ingested, with a reason naming the file (and line where there is one)."""

    source: str
    reason: str


class Sentence(BaseModel):
    """One sentence (or bullet item, or heading) of a section; `text == section_text[start:end]`."""

    effort_id: str
    section: str
    index: int
    text: str
    start: int
    end: int
    is_heading: bool = False

    @property
    def sentence_id(self) -> str:
        return f"{self.effort_id}:{self.section}:{self.index}"


class Evidence(BaseModel):
    """One ranked evidence sentence for one criterion of one effort."""

    effort_id: str
    criterion_id: str
    rank: int
    score: float
    stated: bool  # P(stated) >= STATED_THRESHOLD
    p_stated: float
    section: str
    sentence: str
    sentence_index: int
    dense_score: float
    lexical_score: float


class Quote(BaseModel):
    """One evidence sentence as a prediction quotes it: its section, its index there, its text (line-break
    hyphenation joined, as `pipeline.textnorm.dehyphenate` does: "be-skæftigelses" reads "beskæftigelses")."""

    section: str
    index: int
    text: str


class Prediction(BaseModel):
    """The predicted answer to one criterion of one page, beside its self-assessment."""

    effort_id: str
    criterion_id: str
    test_kind: str
    item: str
    p_ja: float
    p_delvist: float
    p_nej: float
    predicted: Answer
    self_assessed: str = ""  # empty where the page has no self-assessed answer
    p_stated: float = 0.0  # P(the page states the criterion at all)
    stated: str = ""  # states, partly or silent: the detector's decision and the requirement comparison
    comparison: str = ""  # the requirement against the page: meets, partly, falls short or not stated
    basis: str = (
        ""  # that comparison in words, e.g. "asks: every 2 weeks · page: monthly, often more · partly"
    )
    basis_sentence: str = ""  # the page sentence the comparison read
    evidence: str = ""  # the top sentences for a CSV cell, " | "-separated, each with its section
    quotes: list[Quote] = Field(default_factory=list)  # the same sentences as records (not a CSV column)
    in_sample: bool = (
        False  # the model's head was fitted on this page's answers: its prediction is not a test
    )

    def row(self) -> dict:
        """The prediction as a table row (PREDICTION_COLUMNS): the quotes travel as the `evidence` cell."""
        return self.model_dump(exclude={"quotes"})


PREDICTION_COLUMNS: tuple[str, ...] = tuple(name for name in Prediction.model_fields if name != "quotes")


FlagReason = str  # a code registered in pipeline.outputs.flags.FLAG_CHECKS


class Flag(BaseModel):
    """A self-assessed answer (or test score) that the page does not seem to support, and why."""

    effort_id: str
    criterion_id: str
    test_kind: str
    item: str
    reason: FlagReason
    confidence: float
    self_assessed: str
    predicted: str
    basis: str = ""  # the requirement comparison in words
    explanation: str = ""  # the reason in one line of words, for the analyst
    evidence: str = ""


FLAG_COLUMNS: tuple[str, ...] = tuple(Flag.model_fields)


class Theme(BaseModel):
    """A good-practice theme: sentences from several efforts that say the same kind of thing."""

    theme_id: int
    label: str
    keywords: list[str]
    size: int
    representative_sentences: list[str]
    municipalities: list[str]
    effort_ids: list[str]
    sentence_ids: list[str]
