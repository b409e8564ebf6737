"""The criteria catalogue: answer-level wording removed, one id per criterion, merging on meaning both ways."""

from __future__ import annotations

import csv
import re

import pytest
from conftest import REPO, make_effort_page

from pipeline.embed import get_embedder
from pipeline.ingest import ingest_paths
from pipeline.ingest.criteria import (
    SAME_CRITERION_THRESHOLD,
    CriteriaCatalogue,
    pair_similarities,
    within_test_similarities,
)
from pipeline.ingest.wording import answer_level_in_wording, canonical_criterion

PAIRS = REPO / "tests" / "fixtures" / "criteria_pairs_generated.csv"
LEAKING = re.compile(r"ud af 10|\baltid\b|\bofte\b|\bsjældent\b|i nogle tilfælde", re.IGNORECASE)


@pytest.mark.parametrize(
    ("item", "level"),
    [
        ("Mindst 9 ud af 10 borgere får en samtale", "Ja"),
        ("I mindst 9 ud af 10 samtaler er der afsat mindst 15 minutter", "Ja"),
        ("Mindst 7 ud af 10 borgere udarbejder altid CV", "Delvist"),  # the ratio outranks 'altid'
        ("Færre end 7 ud af 10 borgere udarbejder et CV", "Nej"),
        ("Direktionen i kommunen drøfter ofte resultater", "Delvist"),
        ("Jobcenteret sikrer i nogle tilfælde, at enkelte medarbejdere", "Delvist"),
        ("Det drøftes sjældent på politisk niveau", "Nej"),
        ("Jobcenteret sikrer, at mindst 6 ud af 10 borgere kommer i et virksomhedsforløb", None),
        (
            "Den primære kontaktperson, virksomhedskonsulent og myndighedssagsbehandler har fælles fysiske rammer.",
            None,
        ),
    ],
)
def test_answer_level_in_wording(item, level):
    assert answer_level_in_wording(item) == level


def test_canonical_criteria_carry_no_answer_level_wording(ingested):
    items = [a.item for e in ingested.efforts for t in e.tests for a in t.answers]
    assert len(items) == 47
    for item in items:
        canonical = canonical_criterion(item)
        assert not LEAKING.search(canonical), canonical
        assert canonical[0].isupper() and "  " not in canonical
    assert canonical_criterion(
        "Færre end 7 ud af 10 borgere udarbejder et CV i løbet af de første samtaler"
    ) == ("Borgere udarbejder et CV i løbet af de første samtaler")
    # content quantities are not answer levels and stay
    assert "mindst 15 minutters" in canonical_criterion(
        "I mindst 9 ud af 10 samtaler er der afsat mindst 15 minutters målrettet forberedelsestid"
    )


def _catalogued(tmp_path, pages: dict[str, list[tuple[str, str]]]):
    for name, answers in pages.items():
        (tmp_path / f"{name}.txt").write_text(make_effort_page(name, answers), encoding="utf-8")
    efforts = ingest_paths([tmp_path]).efforts
    CriteriaCatalogue().assign(efforts)
    return {e.municipality: [a.criterion_id for t in e.tests for a in t.answers] for e in efforts}


def test_one_criterion_at_different_answer_levels_shares_an_id(tmp_path):
    ids = _catalogued(
        tmp_path,
        {
            "Aby": [("Delvist", "Mindst 7 ud af 10 borgere får samtaler hver 2. uge")],
            "Bby": [("Nej", "Færre end 7 ud af 10 borgere får samtaler hver 2. uge")],
            "Cby": [("Ja", "Mindst 9 ud af 10 borgere, har tilknyttet en gennemgående jobkonsulent gennem ledighedsforløbet")],
            "Dby": [("Ja", "Mindst 9 ud af 10 borgere har tilknyttet en gennemgående jobkonsulent gennem hele ledighedsforløbet")],
        },
    )  # fmt: skip
    assert ids["Aby"] == ids["Bby"]
    assert ids["Cby"] == ids["Dby"]  # a rewording, matched on meaning
    assert ids["Aby"] != ids["Cby"]


def test_different_criteria_never_share_an_id(tmp_path):
    ids = _catalogued(
        tmp_path,
        {
            "Aby": [("Ja", "Mindst 9 ud af 10 jobkonsulenter uddannes systematisk i at bruge Jobnet CV, Joblog og Min Plan")],
            "Bby": [("Ja", "Jobcenteret har en fast praksis, som sikrer at mindst 9 ud af 10 jobkonsulenter, altid bruger "
                           "it-værktøjerne Jobnet CV, Joblog og Min Plan, i deres forberedelse af samtaler med borgerne")],
        },
    )  # fmt: skip
    assert ids["Aby"] != ids["Bby"]


def test_items_of_one_test_get_distinct_ids(ingested):
    for effort in ingested.efforts:
        for test in effort.tests:
            ids = [a.criterion_id for a in test.answers]
            assert len(ids) == len(set(ids)), (effort.effort_id, test.kind)


def test_threshold_separates_same_from_different_pairs(ingested):
    embedder = get_embedder("e5-offline")
    with PAIRS.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    scores = pair_similarities([(r["item_a"], r["item_b"]) for r in rows], embedder)
    for row, score in zip(rows, scores, strict=True):
        if row["relation"] == "same":
            assert score >= SAME_CRITERION_THRESHOLD, row
        else:
            assert score < SAME_CRITERION_THRESHOLD, row
    highest_within_test = within_test_similarities(ingested.efforts, embedder)[0][0]
    assert highest_within_test < SAME_CRITERION_THRESHOLD


def test_catalogue_round_trip_keeps_ids(tmp_path, ingested):
    path = tmp_path / "criteria.csv"
    catalogue = CriteriaCatalogue()
    efforts = [e.model_copy(deep=True) for e in ingested.efforts]
    catalogue.assign(efforts)
    catalogue.save(path)
    reloaded = CriteriaCatalogue.load(path)
    again = [e.model_copy(deep=True) for e in ingested.efforts]
    for effort in again:
        for test in effort.tests:
            for answer in test.answers:
                answer.criterion_id = ""
    reloaded.assign(again)
    assert [a.criterion_id for e in again for t in e.tests for a in t.answers] == [
        a.criterion_id for e in efforts for t in e.tests for a in t.answers
    ]
    assert len(reloaded.criteria) == len(catalogue.criteria) == 47
    row = next(csv.DictReader(path.open(encoding="utf-8")))
    assert row["tests"] and row["phrasings"] and not LEAKING.search(row["canonical_text"])
