"""Good-practice themes on the corpus: every source in, deterministic, readable labels, outputs and questions."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import run_cli

from pipeline.embed import CachedEmbedder, get_embedder
from pipeline.textnorm import stop_words
from pipeline.themes.model import (
    EXTRA_STOP_WORDS,
    THEME_SECTIONS,
    assign_themes,
    find_themes,
    is_boilerplate,
    keyphrases,
    npmi_coherence,
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
                assert any(word in w for w in vocabulary), (theme.label, phrase)  # no lemma made up


def test_keyphrases_prefer_distinct_multiword_phrases():
    texts = [
        "lønnede timer på virksomheden",
        "lønnede timer hver uge",
        "borgerne får mentor",
        "borgerne får mentor",
    ]
    phrases = keyphrases(texts, np.array([0, 0, 1, 1]), n=2)
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
    assert keyphrases(texts, np.array([0, 0, 0, 0, 1, 1]), n=2)[0] == ["jobrotation", "vikarer"]


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
