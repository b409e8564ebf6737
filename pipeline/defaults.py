"""Every default that more than one part of evidens uses, defined once. Importing this module costs nothing,
so the command line can show its defaults without loading a backend."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path

DEFAULT_EMBEDDER = "e5-offline"
DEFAULT_EXPERIMENT = "evidens"
REGISTERED_MODEL = "evidens"
CHAMPION_ALIAS = "champion"  # moves only to a version whose out-of-fold macro-F1 is at least the champion's
DEFAULT_MODEL_URI = f"models:/{REGISTERED_MODEL}@{CHAMPION_ALIAS}"
DEFAULT_RAW = Path("corpus") / "raw"  # the project's real pages
DEFAULT_CORPUS = Path("corpus")  # what `evidens ingest` writes
DEFAULT_LABELS = Path("labels")
DEFAULT_REPORTS = Path("reports")


class ReportLanguage(StrEnum):
    """The languages report.html is written in (catalogues in pipeline/outputs/report/locale/)."""

    da = "da"
    en = "en"


DEFAULT_REPORT_LANGUAGE = ReportLanguage.da
EXPERIMENTS_DIR = Path("experiments")  # the project's MLflow store (SQLite) and artifacts
DEFAULT_CACHE = Path(".cache") / "embeddings.sqlite"  # the project's embedding cache, for its own commands


def user_cache() -> Path:
    """The embedding cache of a model used outside the project (a loaded model with no cache set): under the
    user's cache folder, never in the caller's working folder."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "evidens" / "embeddings.sqlite"


# A criterion the page does not state leans to "not done" (Nej), with room for a page that under-describes: the
# text cannot say how honest a page is, so this
# is a setting, reported with every figure (--silent-prior), not something fitted.
# P(stated) at or above this is "stated": with balanced class weights, the point where missing a stated practice and
# flagging a silent one cost alike, whatever the share of stated criteria.
STATED_THRESHOLD = 0.5
SILENT_PRIOR = "Nej=0.5,Delvist=0.3,Ja=0.2"

# Bounds on input, each refused with a reason that names it (nothing stalls or fails deep inside a backend).
MAX_CSV_FIELD_CHARS = 16 * 1024 * 1024  # one CSV cell (Python's csv default is 131,072)
MAX_PAGE_CHARS = 1_000_000  # one page's text (spaCy's own limit, E088, is the same)
MAX_PAGE_BYTES = 64 * 1024 * 1024  # one page file, HTML markup included, before it is read
MAX_SIDECAR_BYTES = 64 * 1024  # one page's PAGE.meta.json (a URL and a date)
MAX_ANSWERS_PER_PAGE = 1_000  # the real pages have 29 and 18
MAX_VERDICT_ROWS = 100_000  # one `evidens review import` file
