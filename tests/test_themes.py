"""Good-practice themes on the corpus: every source in, deterministic, readable labels, outputs and questions."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import run_cli

from pipeline.embed import CachedEmbedder, get_embedder
from pipeline.records import Theme
from pipeline.textnorm import stop_words
from pipeline.themes.checks import LABEL_CHECKS, check_themes
from pipeline.themes.model import (
    EXTRA_STOP_WORDS,
    KEYWORD_METHODS,
    THEME_SECTIONS,
    assign_themes,
    find_themes,
    is_boilerplate,
    keyphrases,
    npmi_coherence,
    representatives,
    sliding_windows,
    theme_drift,
    theme_units,
    word_sets,
)
from pipeline.themes.output import (
    INFO_COLUMNS,
    PASSAGE_COLUMNS,
    explorer_html,
    map_points,
    municipalities_describing,
    themes_shared_by,
    write_theme_outputs,
)
from pipeline.themes.pins import Pin, apply_pins, pins_for, read_pins, write_pins


@pytest.fixture(scope="session")
def embedder(embedding_cache):
    return CachedEmbedder(get_embedder("e5-offline"), embedding_cache)


@pytest.fixture(scope="session")
def theme_model(ingested, embedder):
    return find_themes(ingested.efforts, embedder)


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_every_effort_and_source_contributes_passages(ingested, theme_model):
    units = theme_model.units
    assert {u.sentence.effort_id for u in units} == {e.effort_id for e in ingested.efforts}
    assert {u.kind for u in units} == {"effort_page", "theme_page_part", "report"}
    assert {u.sentence.section for u in units} <= set(THEME_SECTIONS)
    assert len(units) >= 150 and not any(u.sentence.is_heading or is_boilerplate(u.text) for u in units)


def test_boilerplate_is_left_out():
    for line in (
        "Størrelse: 1200 x 800 px",
        "Side 12",
        "17",
        "Download rapporten som PDF",
        "Læs mere her",
        "Figur 2-3: Kommunernes fordeling af roller 13 pct. (2) 67 pct. (10)",
        "Antal borgere Tabel 4.1: Sagsstamme",
    ):
        assert is_boilerplate(line), line
    assert not is_boilerplate("Vi holder samtaler med borgerne hver anden uge i jobcentret.")
    assert not is_boilerplate("Tabel 2 viser, hvor stor en andel af borgerne, der har opnået beskæftigelse.")


def test_passages_join_consecutive_sentences_of_one_section(ingested):
    sentences = theme_units(ingested.efforts)
    passages = theme_units(ingested.efforts, sentences_per_passage=3)
    assert len(sentences) / 3 <= len(passages) < len(sentences)
    by_effort = {e.effort_id: e for e in ingested.efforts}
    for unit in passages:
        passage = unit.sentence
        section_text = getattr(by_effort[passage.effort_id].sections, passage.section)
        assert section_text[passage.start : passage.end] == passage.text
        within = [
            s.sentence
            for s in sentences
            if (s.sentence.effort_id, s.sentence.section) == (passage.effort_id, passage.section)
            and passage.start <= s.sentence.start < passage.end
        ]
        assert len(within) <= 3


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_themes_cover_most_passages_and_are_the_same_on_every_run(ingested, embedder, theme_model):
    labels = theme_model.labels
    assert len(theme_model.themes) >= 5 and np.mean(labels >= 0) >= 0.8
    assert np.array_equal(find_themes(ingested.efforts, embedder).labels, labels)
    assert sorted({int(x) for x in labels if x >= 0}) == list(range(len(theme_model.themes)))


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_labels_are_multiword_keyphrases_without_stop_words_or_fragments(theme_model):
    stops = stop_words() | {"sin", "sit", "sine", "mod", "hos", "når", "hvilket"}  # NLTK's list has these too
    assert stops <= stop_words() | EXTRA_STOP_WORDS
    vocabulary = {w for u in theme_model.units for w in u.text.lower().replace("-", " ").split()}
    for theme in theme_model.themes:
        assert theme.keywords and theme.representative_sentences and theme.municipalities
        assert " " in theme.label or len(theme.keywords) == 1
        for phrase in theme.keywords:
            for word in phrase.split():
                assert word not in stops and len(word) > 2, (theme.label, phrase)
                # no lemma made up (a name keeps the source's capitals: "JobFirst")
                assert any(word.lower() in w for w in vocabulary), (theme.label, phrase)


def test_keyphrases_prefer_distinct_multiword_phrases():
    texts = [
        "lønnede timer på virksomheden",
        "lønnede timer hver uge",
        "borgerne får mentor",
        "borgerne får mentor",
    ]
    phrases = keyphrases(
        texts, np.array([0, 0, 1, 1]), n=2, method=KEYWORD_METHODS["c-TF-IDF, phrases first"]
    )
    assert phrases[0][0] == "lønnede timer" and phrases[1][0] in (
        "borgerne",
        "mentor",
    )  # no phrase across "får"


def test_keywords_are_words_the_theme_uses_together():
    """Three equally distinctive words: after the first, the one the theme's passages use with it wins over
    the one that comes first in the ranking's tie order but never meets it."""
    texts = [
        "jobrotation og vikarer",
        "jobrotation og vikarer",
        "mentorordning",
        "mentorordning",
        "borgerne får hjælp",
        "borgerne får hjælp",
    ]
    before = KEYWORD_METHODS["c-TF-IDF + in-theme NPMI, phrases first (before)"]
    assert keyphrases(texts, np.array([0, 0, 0, 0, 1, 1]), n=2, method=before)[0] == [
        "jobrotation",
        "vikarer",
    ]


def test_suspended_compound_halves_are_no_words():
    assert word_sets(["sundheds- og beskæftigelsesområdet, job-databaser"]) == [
        {"og", "beskæftigelsesområdet", "job", "databaser"}
    ]


def test_npmi_is_one_for_words_always_together_and_minus_one_for_never():
    documents = word_sets(["alfa beta", "alfa beta", "gamma delta", "gamma"])
    assert npmi_coherence(["alfa beta"], documents) == pytest.approx(1.0)
    assert npmi_coherence(["alfa", "delta"], documents) == -1.0
    windows = sliding_windows(["alfa beta gamma delta"], size=2)
    assert windows == [{"alfa", "beta"}, {"beta", "gamma"}, {"gamma", "delta"}]
    assert npmi_coherence(["alfa", "delta"], windows) == -1.0 < npmi_coherence(["alfa", "beta"], windows)


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_passages_on_one_practice_gather_in_one_theme(theme_model):
    """Paid hours ("ordinære løntimer") are one practice, described by the report and several municipalities."""
    themes = [
        int(t)
        for u, t in zip(theme_model.units, theme_model.labels, strict=True)
        if "ordinære løntimer" in u.text
    ]
    most = max(set(themes), key=themes.count)
    assert len(themes) >= 5 and themes.count(most) / len(themes) >= 0.5 and most >= 0


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_transform_assigns_known_passages_to_their_own_theme(ingested, embedder, theme_model):
    fitted = [t.model_dump() for t in theme_model.themes]
    assigned = assign_themes(ingested.efforts, embedder, theme_model.centroids, theme_model.floor, fitted)
    agree = np.mean(assigned.labels == theme_model.labels)
    assert agree >= 0.7 and np.all(assigned.labels >= 0)  # the floor is every theme's farthest member


def test_drift_reports_moves_between_fits():
    drift = theme_drift({"a": 0, "b": 0, "c": 1, "d": 1}, {"a": 1, "b": 1, "c": 0, "d": 2, "e": 0})
    assert drift["shared_passages"] == 4 and drift["ari"] < 1
    assert drift["themes"][0] == {"previous": 0, "now": 1, "share": 1.0}


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_outputs_and_questions(theme_model, tmp_path):
    written = write_theme_outputs(theme_model, tmp_path)
    assert all(p.exists() for p in written)
    info = list(csv.DictReader((tmp_path / "themes_info.csv").open(encoding="utf-8")))
    passages = list(csv.DictReader((tmp_path / "themes.csv").open(encoding="utf-8")))
    assert tuple(info[0]) == INFO_COLUMNS and tuple(passages[0]) == PASSAGE_COLUMNS
    assert len(passages) == len(theme_model.units)
    page = (tmp_path / "themes_explorer.html").read_text(encoding="utf-8")
    assert "plotly_click" in page and 'id="search"' in page and "<script src=" not in page  # self-contained
    found = municipalities_describing(tmp_path, "0")
    assert found[0].theme_id == 0 and found[0].municipalities
    shared = themes_shared_by(tmp_path, "Odsherred")
    assert shared and all(count > 0 for _, _, count, _ in shared)


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_scraped_text_is_escaped_in_the_explorer(theme_model):
    unit = theme_model.units[0]
    object.__setattr__(unit.sentence, "text", unit.sentence.text + " <img src=x onerror=alert(1)>")
    try:
        page = explorer_html(theme_model, map_points(theme_model, 0))
        assert "<img src=x" not in page
    finally:
        object.__setattr__(
            unit.sentence, "text", unit.sentence.text.removesuffix(" <img src=x onerror=alert(1)>")
        )


@pytest.mark.slow
def test_cli_themes_tracks_the_run_and_reports_drift_on_refit(corpus_dir, tmp_path, embedding_cache):
    out, store = tmp_path / "themes", f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = (
        "themes",
        "--corpus",
        str(corpus_dir),
        "--out",
        str(out),
        "--cache",
        str(embedding_cache),
        "--tracking-uri",
        store,
    )
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr
    assert "| theme | label | size | municipalities |" in done.stdout and "MLflow run" in done.stderr
    data = json.loads((out / "themes.json").read_text(encoding="utf-8"))
    assert data["themes"] and data["coverage"] >= 0.8
    again = run_cli(*args)
    assert again.returncode == 0 and json.loads((out / "themes_drift.json").read_text())["ari"] == 1.0
    assigned = run_cli(
        "themes", "--corpus", str(corpus_dir), "--out", str(out), "--cache", str(embedding_cache), "--assign"
    )
    assert assigned.returncode == 0, assigned.stderr
    who = run_cli("theme-municipalities", "0", "--out", str(out))
    assert who.returncode == 0 and "theme 0:" in who.stdout


FRONT_MATTER = (
    "Til Styrelsen for Arbejdsmarked og Rekruttering Dato Maj 2018 DELRAPPORT 3: ORGANISERING Evaluering af "
    "JobFirst INDHOLD 1. INDLEDNING Datagrundlag og metode 3 2. HVORDAN ORGANISERER DU EN SUCCESFULD "
    "JOBFIRST-INDSATS?"
)


def test_front_matter_contents_and_headings_in_capitals_are_boilerplate():
    assert is_boilerplate(FRONT_MATTER)
    assert is_boilerplate("INDHOLD 1. INDLEDNING 3 2. METODE 5")
    assert is_boilerplate("ALL INCLUSIVE (Sammenlægning af rollerne) VK/MENTOR & KS (separat) ALL APART")
    assert not is_boilerplate("Borgere i CUBB og KIB får en mentor, som JobFirst anbefaler.")


def _theme(theme_id: int, label: str, keywords: list[str]) -> Theme:
    return Theme(theme_id=theme_id, label=label, keywords=keywords, size=5, representative_sentences=["x"],
                 municipalities=["Vejle"], effort_ids=["e"], sentence_ids=["s"])  # fmt: skip


def test_each_label_check_fires_on_its_own_fault():
    themes = [
        _theme(0, "lønnede timer · ordinære timer", ["lønnede timer"]),  # repeats its neighbour
        _theme(1, "kommune arbejder", ["mentor"]),  # template
        _theme(2, "beskæftigelsesindsatser cubb", ["mentor"]),  # a name lower-cased
        _theme(3, "frobnicate sagsgange", ["mentor"]),  # no Danish word
        _theme(4, "mentor", ["apart", "inclusive"]),  # one word; English keywords
        _theme(5, "fælles mål · kommune arbejder", ["mål"]),  # shares a phrase with theme 1 (and a template)
        _theme(6, "hyppige samtaler", ["samtaler"]),  # a boilerplate passage in the theme
        _theme(7, "CUBB forløb · JobFirst indsats", ["CUBB"]),  # names as the source writes them: passes
    ]
    failures = check_themes(
        themes, {"cubb": "CUBB", "jobfirst": "JobFirst"}, lambda p: p.lower() == "kommune arbejder", {6: 1}
    )
    assert failures[0] == ["repeats_neighbour"]
    assert failures[1] == ["template", "shared_label"]
    assert failures[2] == ["acronym_fragment", "unknown_word"]  # "cubb" is no Danish word either
    assert failures[3] == ["unknown_word"]
    assert failures[4] == ["phrase_length", "english_keyword"]
    assert failures[5] == ["template", "shared_label"]
    assert failures[6] == ["boilerplate"]
    assert failures[7] == []
    pinned = check_themes(themes, {}, lambda p: False, {}, frozenset({3}))  # a researcher's label is theirs
    assert pinned[3] == []


def test_pins_rename_merge_and_say_which_no_longer_match(tmp_path):
    ids = [f"s{i}" for i in range(12)]
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3])
    pins = [
        Pin("Løntimer i virksomheder", ("s0", "s1", "s2")),  # rename theme 0
        Pin("Sprog og job", ("s4", "s5")),  # merge themes 1 and 2
        Pin("Sprog og job", ("s7", "s8", "s9")),
        Pin("Gone", ("x1", "x2")),  # its passages left the corpus
        Pin("Scattered", ("s0", "s4", "s10")),  # over three themes
    ]
    path = tmp_path / "theme_pins.csv"
    write_pins(path, pins)
    assert read_pins(path) == pins
    merged, pinned, report = apply_pins(read_pins(path), ids, labels, 2, path)
    assert len(set(merged[4:10].tolist())) == 1 and merged[4] == 0  # merged, now the largest
    assert pinned == {0: "Sprog og job", 1: "Løntimer i virksomheder"}
    assert [s.status for s in report.statuses][:3] == ["kept", "merged", "merged"]
    assert [s.pin.label for s in report.unmatched] == ["Gone", "Scattered"]
    assert all(s.status.startswith("no longer matches") for s in report.unmatched)


def test_representatives_are_no_near_copies():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 8))
    vectors = np.vstack([base, base + 1e-3, base + 2e-3, rng.normal(size=(3, 8))])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = ["a b c", "a b c.", "a b c!", "d e f", "g h i", "j k l"]
    chosen = representatives(vectors, np.arange(6), texts)
    assert len(chosen) == 3 and len({texts[i].rstrip(".!") for i in chosen}) == 3
    assert sum(i < 3 for i in chosen) == 1  # one of the three near-copies at most


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_labels_pass_every_check_on_the_corpus(theme_model):
    assert set(theme_model.check_counts()) == set(LABEL_CHECKS)
    assert theme_model.check_counts() == dict.fromkeys(LABEL_CHECKS, 0), theme_model.checks
    assert not any(FRONT_MATTER[:40] in u.text for u in theme_model.units)
    labels = [t.label for t in theme_model.themes]
    assert len(set(labels)) == len(labels) and "kommune arbejder" not in " ".join(labels).lower()
    for theme in theme_model.themes:
        assert len(theme.representative_sentences) == 3
        assert len(theme_model.representatives[theme.theme_id]) == 3


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_curation_round_trip_keeps_pins_after_a_refit(ingested, embedder, theme_model, tmp_path):
    out, pins = tmp_path / "themes", tmp_path / "theme_pins.csv"
    write_theme_outputs(theme_model, out)
    sizes = {t.theme_id: t.size for t in theme_model.themes}
    write_pins(pins, pins_for(out, [3], "Krav og mål") + pins_for(out, [5, 11], "Job og dansk for kvinder"))
    refit = find_themes(ingested.efforts, embedder, pins=pins)
    by_label = {t.label: t for t in refit.themes}
    assert by_label["Krav og mål"].size == sizes[3]
    assert by_label["Job og dansk for kvinder"].size == sizes[5] + sizes[11]
    assert len(refit.themes) == len(theme_model.themes) - 1 and not refit.pins.unmatched
    assert set(refit.pinned.values()) == {"Krav og mål", "Job og dansk for kvinder"}
    written = write_theme_outputs(refit, out)
    assert out / "themes_pins.csv" in written
    again = find_themes(ingested.efforts, embedder, pins=pins)  # pins stay on every re-fit
    assert [t.label for t in again.themes] == [t.label for t in refit.themes]


@pytest.mark.slow  # real e5 (the fast tier never loads it)
def test_outputs_are_the_same_for_a_seed(theme_model, tmp_path):
    for name in ("a", "b"):
        write_theme_outputs(theme_model, tmp_path / name, seed=3)
    for name in ("themes_info.csv", "themes.csv", "themes.json", "themes_model.json", "themes_explorer.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
