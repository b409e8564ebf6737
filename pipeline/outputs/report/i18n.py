"""The report's words in the analyst's language: gettext catalogues (`locale/<lang>/LC_MESSAGES/report.po`)
read through Babel and installed into Jinja2's i18n extension. The message ids are English; Danish is the
default language. A catalogue is compiled when first used, so the `.po` file is the one source and a fresh
`pip install -e .` (or a wheel, which ships the `.po` files as package data) always has working words.

Refresh the catalogues after changing the report's words (babel.cfg names the template and the flag checks):

    pybabel extract -F babel.cfg -k register_flag_check:2 --no-location --omit-header \
        -o pipeline/outputs/report/locale/report.pot .
    pybabel update -D report -i pipeline/outputs/report/locale/report.pot -d pipeline/outputs/report/locale -w 110

then write the new Danish words in `locale/da/LC_MESSAGES/report.po` (a test fails while one is missing).
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

from pipeline.defaults import DEFAULT_REPORT_LANGUAGE, ReportLanguage
from pipeline.errors import EvidensError

LANGUAGES = tuple(language.value for language in ReportLanguage)
DEFAULT_LANGUAGE = DEFAULT_REPORT_LANGUAGE.value
DOMAIN = "report"
LOCALE_DIR = Path(__file__).parent / "locale"


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(lang: str) -> Translations:
    """The compiled catalogue of `lang` (one of LANGUAGES)."""
    if lang not in LANGUAGES:
        raise EvidensError(f"unknown report language {lang!r} (expected one of {', '.join(LANGUAGES)})")
    with catalogue_path(lang).open("rb") as po:
        catalogue = read_po(po, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def decimal(value: float, lang: str, digits: int = 2) -> str:
    """A number as the language writes it: 0,72 in Danish, 0.72 in English."""
    return format_decimal(value, format="0." + "0" * digits, locale=lang)
