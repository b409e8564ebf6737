"""The criteria catalogue: answer-level wording removed, one id per criterion, merging on meaning both ways."""

from __future__ import annotations

import csv
import re

import pytest
from conftest import REPO, make_effort_page, run_cli

from pipeline.embed import get_embedder
from pipeline.errors import EvidensError
from pipeline.ingest import ingest_paths
from pipeline.ingest.alignment import GOLD_PAIRS, MERGE_THRESHOLD, core_of, pair_scores
from pipeline.ingest.criteria import PINS_FILE, CriteriaCatalogue, load_pins
from pipeline.ingest.wording import answer_level_in_wording, canonical_criterion
from pipeline.tables import write_csv

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


@pytest.mark.slow  # real e5 (the fast tier never loads it)
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


@pytest.mark.slow  # real e5 (the fast tier never loads it)
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


def _pairs(path):
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_threshold_makes_no_false_merge_on_real_pairs_and_merges_the_generated_rewordings(ingested):
    embedder = get_embedder("e5-offline")
    within = [
        (a.item, b.item)
        for effort in ingested.efforts
        for test in effort.tests
        for i, a in enumerate(test.answers)
        for b in test.answers[i + 1 :]
    ]
    assert len(within) == 305 and max(pair_scores(within, embedder)) < MERGE_THRESHOLD
    gold = _pairs(GOLD_PAIRS)
    scores = pair_scores([(r["item_a"], r["item_b"]) for r in gold], embedder)
    assert all(
        score < MERGE_THRESHOLD for row, score in zip(gold, scores, strict=True) if row["relation"] != "same"
    )
    assert any(
        score >= MERGE_THRESHOLD for row, score in zip(gold, scores, strict=True) if row["relation"] == "same"
    )
    generated = _pairs(PAIRS)
    scores = pair_scores([(r["item_a"], r["item_b"]) for r in generated], embedder)
    for row, score in zip(generated, scores, strict=True):
        assert (score >= MERGE_THRESHOLD) == (row["relation"] == "same"), row


@pytest.mark.parametrize(
    ("framed", "bare"),
    [
        (
            "Jobcenteret har en fast praksis, der sikrer at mindst 9 ud af 10 jobkonsulenter, orienterer sig i aktuelle "
            "jobåbninger på Jobnet, eller andre job-databaser, forud for mødet med borgeren.",
            "Færre end 7 ud af 10 jobkonsulenter orienterer sig i aktuelle jobåbninger på Jobnet eller andre "
            "job-databaser forud for mødet med borgeren",
        ),
        (
            "Vi har faste arbejdsgange, der sikrer, at mindst 7 ud af 10 jobkonsulenter deltager i teammøder",
            "Færre end 7 ud af 10 jobkonsulenter deltager i teammøder",
        ),
        (
            "Jobcenteret har ikke en fast praksis, som sikrer at mindst 9 ud af 10 jobkonsulenter, altid bruger "
            "it-værktøjerne",
            "Mindst 7 ud af 10 jobkonsulenter bruger it-værktøjerne",
        ),
        ("Kontakt til myndighedssagsbe-handler i sagen", "Kontakt til myndighedssagsbehandler i sagen"),
    ],
)
def test_frames_levels_and_hyphenation_leave_one_core(framed, bare):
    assert core_of(framed).key == core_of(bare).key


def _pin_file(labels, rows):
    columns = ("item_a", "item_b", "decision", "note")
    write_csv(labels / PINS_FILE, [dict(zip(columns, r, strict=True)) for r in rows], columns)
    return load_pins(labels / PINS_FILE)


FEEDBACK_A = ("Mindst 7 ud af 10 jobkonsulenter, får ledelsesmæssig eller kollegial feedback på deres samtaler, via "
              "kollegers og chefers deltagelse i jobkonsulentens borgersamtaler, mindst én gang hver måned")  # fmt: skip
FEEDBACK_B = ("Mindst 9 ud af 10 medarbejdere modtager systematisk ledelsesmæssig og kollegial feedback på deres "
              "borgersamtaler, via kollegers og lederes deltagelse på borgersamtaler, mindst én gang hver måned.")  # fmt: skip
ADGANG_A = ("Mindst 9 ud af 10 borgere, har direkte adgang til deres jobkonsulent via et direkte telefonnummer og/eller "
            "en direkte e-mailadresse og kan altid forvente en tilbagemelding inden for 24 timer.")  # fmt: skip
ADGANG_B = ("Mindst 9 ud af 10 borgere har nem og direkte adgang til deres primære kontaktperson via et direkte "
            "telefonnummer og/eller en direkte e-mailadresse, og kan forvente en tilbagemelding inden for 24 timer")  # fmt: skip


def _assigned(tmp_path, pins):
    pages = {"Aby": [("Ja", FEEDBACK_A), ("Ja", ADGANG_A)], "Bby": [("Ja", FEEDBACK_B), ("Ja", ADGANG_B)]}
    for name, answers in pages.items():
        (tmp_path / f"{name}.txt").write_text(make_effort_page(name, answers), encoding="utf-8")
    efforts = ingest_paths([tmp_path]).efforts
    CriteriaCatalogue(pins=pins).assign(efforts)
    return {e.municipality: [a.criterion_id for t in e.tests for a in t.answers] for e in efforts}


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_pins_merge_and_split_against_the_similarity(tmp_path):
    pages, labels = tmp_path / "pages", tmp_path / "labels"
    pages.mkdir(), labels.mkdir()
    unpinned = _assigned(pages, [])
    assert unpinned["Aby"][0] != unpinned["Bby"][0]  # feedback: 0.81, below the threshold
    assert unpinned["Aby"][1] == unpinned["Bby"][1]  # direct access: 0.90, merged
    pinned = _assigned(
        pages,
        _pin_file(labels, [(FEEDBACK_A, FEEDBACK_B, "same", ""), (ADGANG_B, ADGANG_A, "different", "")]),
    )
    assert pinned["Aby"][0] == pinned["Bby"][0]
    assert pinned["Aby"][1] != pinned["Bby"][1]


def test_a_bad_pin_names_the_file_and_line(tmp_path):
    with pytest.raises(EvidensError, match=r"criteria_pins.csv:3: .*same or different"):
        _pin_file(tmp_path, [(FEEDBACK_A, FEEDBACK_B, "same", ""), (FEEDBACK_A, ADGANG_A, "maybe", "")])


@pytest.mark.slow  # real e5 (the fast tier never loads it)
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
    assert len(reloaded.criteria) == len(catalogue.criteria) == 46  # one cross-page merge
    row = next(csv.DictReader(path.open(encoding="utf-8")))
    assert row["tests"] and row["phrasings"] and not LEAKING.search(row["canonical_text"])


@pytest.mark.slow
def test_cli_criteria_lists_merges_and_near_misses(tmp_path, corpus_dir):
    labels = tmp_path / "labels"
    done = run_cli(
        "ingest", str(REPO / "corpus" / "raw"), "--out", str(tmp_path / "corpus"), "--labels", str(labels)
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "near.csv"
    done = run_cli("criteria", "--labels", str(labels), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "46 criteria" in done.stdout and "merges (1)" in done.stdout
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows and all(float(r["similarity"]) < MERGE_THRESHOLD for r in rows)
    assert {r["criterion_a"] for r in rows} <= {
        line.split(",")[0] for line in (labels / "criteria.csv").open()
    }
