"""Text normalisation on the real hyphenation of the corpus's dumps."""

from __future__ import annotations

import pytest

from pipeline.textnorm import content_lemmas, normalise_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("be-skæftigelsesindsatsen", "beskæftigelsesindsatsen"),  # line-break hyphenation in the report
        ("myndighedssagsbe-handler", "myndighedssagsbehandler"),  # Tårnby's page: the tail crosses the hyphen
        ("job-databaser", "job-databaser"),  # real hyphens stay
        ("it-værktøjerne", "it-værktøjerne"),
        ("resultat-udfordringer", "resultat-udfordringer"),
        ("JobFirst-indsatsen", "JobFirst-indsatsen"),
        ("ikke-jobparate", "ikke-jobparate"),
    ],
)
def test_dehyphenation_joins_broken_words_and_keeps_real_hyphens(raw, expected):
    assert normalise_text(f"Om {raw} her") == f"Om {expected} her"


def test_spacing_and_soft_hyphens_are_normalised():
    assert (
        normalise_text("  Borgere\u00a0 får  sam\u00adtaler , hver uge .")
        == "Borgere får samtaler, hver uge."
    )


def test_content_lemmas_drop_stop_words_and_lemmatise():
    assert content_lemmas("Jobkonsulenterne vejleder borgerne om jobsøgning") == [
        "jobkonsulent",
        "vejlede",
        "borger",
        "jobsøgning",
    ]
