"""Good-practice themes on the corpus: deterministic, complete, no headings, the same practice together."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from pipeline.embed import CachedEmbedder, get_embedder
from pipeline.segment import segment_efforts
from pipeline.themes import MAX_THEMES, MIN_THEMES, class_tfidf_keywords, find_themes, lemmas, theme_sentences

SAME_PRACTICE = [
    # early job focus: Odsherred's advice and Tårnby's experiences
    ("Det virker at sætte fokus på job fra første møde med borgeren", "Vi har erfaret at det at tale beskæftigelse og arbejdsmarkedet med borgerne tidligt i forløbet"),
    # paid hours: Skive's and Aarhus's advice on the theme page
    ("Hav fokus på lønnede timer", "Forhandl med virksomhederne om lønnede timer"),
]  # fmt: skip


@pytest.fixture(scope="session")
def theme_model(ingested, embedding_cache):
    embedder = CachedEmbedder(get_embedder("e5-offline"), embedding_cache)
    return find_themes(ingested.efforts, embedder, seed=0), embedder


def test_themes_are_deterministic_for_a_seed(ingested, theme_model):
    model, embedder = theme_model
    again = find_themes(ingested.efforts, embedder, seed=0)
    assert [t.model_dump() for t in again.themes] == [t.model_dump() for t in model.themes]
    assert (again.labels == model.labels).all()


def test_every_theme_has_keywords_sentences_municipalities_and_report_evidence(theme_model):
    model, _ = theme_model
    assert MIN_THEMES <= len(model.themes) <= MAX_THEMES
    assert sum(t.size for t in model.themes) == len(model.sentences)  # every sentence has a theme
    for theme in model.themes:
        assert theme.keywords and theme.label and theme.representative_sentences and theme.municipalities
        assert len(theme.report_passages) == 3 and all(0 < s <= 1 for _, s in theme.report_passages)
    assert max(model.silhouettes, key=model.silhouettes.get) == len(model.themes)  # k chosen by silhouette


def test_theme_sentences_come_from_the_right_sections_and_no_heading(ingested, theme_model):
    model, _ = theme_model
    headings = {s.text for s in segment_efforts(ingested.efforts) if s.is_heading}
    assert not headings & {s.text for s in model.sentences}
    assert {s.section for s in model.sentences} <= {"advice", "experiences", "organisation"}
    kinds = {e.effort_id: e.kind for e in ingested.efforts}
    assert {kinds[s.effort_id] for s in model.sentences} == {"effort_page", "theme_page_part"}
    assert len(theme_sentences(ingested.efforts)) == len(model.sentences)


@pytest.mark.parametrize(("first", "second"), SAME_PRACTICE)
def test_the_same_practice_in_two_municipalities_lands_in_one_theme(theme_model, first, second):
    model, _ = theme_model
    label = {s.text: int(t) for s, t in zip(model.sentences, model.labels, strict=True)}
    (a,) = [t for text, t in label.items() if text.startswith(first)]
    (b,) = [t for text, t in label.items() if text.startswith(second)]
    assert a == b


def test_keywords_are_lemmas_without_stop_words():
    assert lemmas("Virksomhederne samarbejder med jobkonsulenterne om de lønnede timer") == [
        "virksomhed", "samarbejde", "jobkonsulent", "lønne", "time",
    ]  # fmt: skip
    keywords = class_tfidf_keywords(
        ["virksomheder virksomheder timer og", "borgerne borgerne og mentor"], n=2
    )
    assert keywords == [["virksomhed", "time"], ["borger", "mentor"]]


@pytest.mark.slow
def test_cli_themes_writes_json_csv_and_plots(corpus_dir, tmp_path, embedding_cache):
    out = tmp_path / "themes"
    done = run_cli("themes", "--corpus", str(corpus_dir), "--out", str(out), "--cache", str(embedding_cache))
    assert done.returncode == 0, done.stderr
    data = json.loads((out / "themes.json").read_text(encoding="utf-8"))
    assert data["themes"] and set(data["silhouette_by_k"])
    assert (out / "themes.csv").read_text(encoding="utf-8").startswith("theme_id,theme_label,municipality")
    for png in ("themes_map.png", "themes_by_municipality.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert "| theme | label | size | municipalities |" in done.stdout
