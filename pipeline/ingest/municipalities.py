"""Denmark's 98 municipalities (since the 2007 reform), to recognise "<Name>(s) Kommune(s)" in page text."""

from __future__ import annotations

import re

MUNICIPALITIES: tuple[str, ...] = tuple(
    [
        "Aabenraa",
        "Aalborg",
        "Aarhus",
        "Albertslund",
        "Allerød",
        "Assens",
        "Ballerup",
        "Billund",
        "Bornholm",
        "Brøndby",
        "Brønderslev",
        "Dragør",
        "Egedal",
        "Esbjerg",
        "Fanø",
        "Favrskov",
        "Faxe",
        "Fredensborg",
        "Fredericia",
        "Frederiksberg",
        "Frederikshavn",
        "Frederikssund",
        "Furesø",
        "Faaborg-Midtfyn",
        "Gentofte",
        "Gladsaxe",
        "Glostrup",
        "Greve",
        "Gribskov",
        "Guldborgsund",
        "Haderslev",
        "Halsnæs",
        "Hedensted",
        "Helsingør",
        "Herlev",
        "Herning",
        "Hillerød",
        "Hjørring",
        "Holbæk",
        "Holstebro",
        "Horsens",
        "Hvidovre",
        "Høje-Taastrup",
        "Hørsholm",
        "Ikast-Brande",
        "Ishøj",
        "Jammerbugt",
        "Kalundborg",
        "Kerteminde",
        "Kolding",
        "København",
        "Køge",
        "Langeland",
        "Lejre",
        "Lemvig",
        "Lolland",
        "Lyngby-Taarbæk",
        "Læsø",
        "Mariagerfjord",
        "Middelfart",
        "Morsø",
        "Norddjurs",
        "Nordfyns",
        "Nyborg",
        "Næstved",
        "Odder",
        "Odense",
        "Odsherred",
        "Randers",
        "Rebild",
        "Ringkøbing-Skjern",
        "Ringsted",
        "Roskilde",
        "Rudersdal",
        "Rødovre",
        "Samsø",
        "Silkeborg",
        "Skanderborg",
        "Skive",
        "Slagelse",
        "Solrød",
        "Sorø",
        "Stevns",
        "Struer",
        "Svendborg",
        "Syddjurs",
        "Sønderborg",
        "Thisted",
        "Tønder",
        "Tårnby",
        "Vallensbæk",
        "Varde",
        "Vejen",
        "Vejle",
        "Vesthimmerland",
        "Viborg",
        "Vordingborg",
        "Ærø",
    ]
)
_NAMES = "|".join(sorted(map(re.escape, MUNICIPALITIES), key=len, reverse=True))
# "Skive Kommune", "Vesthimmerlands Kommunes", "Københavns Kommune", "Aarhus Kommunes": the name, an optional
# genitive s, then Kommune.
MUNICIPALITY_MENTION = re.compile(
    rf"\b({_NAMES})(?:s|')?\s+Kommune"
)  # "Varde kommuner" in a list is no start
_CANONICAL = {name.lower(): name for name in MUNICIPALITIES}


def municipality_named_in(text: str) -> str | None:
    """The first municipality written as "<Name> Kommune" in text, in its canonical spelling."""
    match = MUNICIPALITY_MENTION.search(text)
    return _CANONICAL[match.group(1).lower()] if match else None


def mentions(text: str, municipality: str) -> bool:
    """Whether text names the municipality at all (with or without "Kommune", genitive included)."""
    return re.search(rf"\b{re.escape(municipality)}s?\b", text, re.IGNORECASE) is not None
