"""Danish segmentation on the real pages, with the expected sentences written out."""

from __future__ import annotations

import pytest

from pipeline.evidence.segment import danish_pipeline, segment_effort
from pipeline.records import Effort, Sections


def _sentences(text: str, section: str = "description") -> list[tuple[str, bool]]:
    effort = Effort(
        effort_id="t",
        source="t",
        content_sha256="t",
        kind="effort_page",
        sections=Sections(**{section: text}),
    )
    return [(s.text, s.is_heading) for s in segment_effort(effort)]


def test_components_are_registered_spacy_factories():
    assert danish_pipeline().pipe_names == ["evidens_sentences", "evidens_headings"]
    assert danish_pipeline().lang == "da"


def test_odsherred_description_expected_sentences(efforts_by_municipality):
    sentences = [
        (s.text, s.is_heading)
        for s in segment_effort(efforts_by_municipality["Odsherred"])
        if s.section == "description"
    ]
    assert sentences[:6] == [
        ("Projektets formål er at styrke den tidlige, jobrettede indsats, så flere jobparate kontanthjælpsmodtagere kommer hurtigere i arbejde.", False),
        ("Følgende redskaber anvendes i denne indsats:", True),
        ("Et tidligt job- og virksomhedsrettet fokus, herunder:", True),
        ("Job- og CV-cafe: Borgeren starter den førstkommende mandag efter visitation i et 14 dages forløb i Job- og CV-café.", False),
        ("Fastholdelse af aktiv jobsøgning: I den efterfølgende uge lægger jobkonsulenten sammen med borgeren en strategi for, hvordan borgeren skal søge job i de kommende 13 uger.", False),
        ("Resultaterne fra Job- og CV-cafeen drøftes og på baggrund af dette rådgives borgeren til den videre jobsøgning.", False),
    ]  # fmt: skip
    assert sentences[-2:] == [("En fast jobkonsulent og hyppige samtaler.", False), ("Mindst en samtale om måneden og ofte hyppigere.", False)]  # fmt: skip
    assert len(sentences) == 16


def test_taarnby_advice_keeps_abbreviations_inside_sentences(efforts_by_municipality):
    advice = [s.text for s in segment_effort(efforts_by_municipality["Tårnby"]) if s.section == "advice"]
    assert advice == [
        "VI har erfaret at vi ikke kan være mentor for alle borgerne.",
        "Der er nogle med så vanskelige udfordringer som fx misbrug.",
        "Dette kræver en særlig viden som ikke kan løftes i teamet.",
        "Endvidere kan vi ikke nå igennem med projektet hvis sagsstammen er for høj, max 35 pr jobformidler",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Det øgede samarbejde har bl.a. medført flere åbninger.",
        "Der var et fald på 17 pct. af jobparate kontanthjælpsmodtagere i 2019.",
        "Vesthimmerland har ca. 45 virksomhedscentre.",
        "Borgere vejledes i søgemetoder, fx. brug af eget netværk.",
        "Der sættes evt. en sprogmakker på, jf. loven, og nr. 3 følger.",
        "Lokale virksomhedsnetværk, den lokale presse m.v. informeres.",
    ],
)
def test_abbreviations_do_not_end_sentences(text):
    assert _sentences(text) == [(text, False)]


def test_bullets_are_sentences_and_lead_ins_are_headings():
    text = "Vi kan give følgende råd:\n• Hold fokus på job.\no Brug småjobs\n- Tal om løn. Det virker.\nSamtale 8:\nForeløbige resultater:\nOrganisering\nVi holder møder."
    assert _sentences(text) == [
        ("Vi kan give følgende råd:", True),
        ("Hold fokus på job.", False),
        ("Brug småjobs", False),
        ("Tal om løn.", False),
        ("Det virker.", False),
        ("Samtale 8:", True),
        ("Foreløbige resultater:", True),
        ("Organisering", True),
        ("Vi holder møder.", False),
    ]


def test_spans_point_into_the_section(ingested):
    for effort in ingested.efforts[:5]:
        for sentence in segment_effort(effort):
            section = getattr(effort.sections, sentence.section)
            assert section[sentence.start : sentence.end] == sentence.text
