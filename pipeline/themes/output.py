"""What `evidens themes` writes: tables for researchers, the municipality profile, plots, the interactive
explorer and the fitted themes (for `transform` and drift), each file written atomically."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.themes.model import ThemeModel, coverage

INFO_COLUMNS = ("theme_id", "size", "label", "keywords", "municipalities", "representative")
PASSAGE_COLUMNS = ("theme_id", "theme_label", "municipality", "effort_id", "section", "sentence")
MODEL_FILE = "themes_model.json"
OUTLIER = "(outlier)"


def passage_rows(model: ThemeModel) -> list[dict]:
    labels = {t.theme_id: t.label for t in model.themes}
    return [
        {
            "theme_id": int(label),
            "theme_label": labels.get(int(label), OUTLIER),
            "municipality": unit.municipality,
            "effort_id": unit.sentence.effort_id,
            "section": unit.sentence.section,
            "sentence": unit.text,
        }
        for unit, label in zip(model.units, model.labels, strict=True)
    ]


def info_rows(model: ThemeModel) -> list[dict]:
    return [
        {
            "theme_id": t.theme_id,
            "size": t.size,
            "label": t.label,
            "keywords": " | ".join(t.keywords),
            "municipalities": " | ".join(t.municipalities),
            "representative": t.representative_sentences[0],
        }
        for t in model.themes
    ]


def municipality_profile(model: ThemeModel) -> list[dict]:
    """Per municipality: its passages in each theme (and outliers), and the share of its passages."""
    names = sorted({u.municipality for u in model.units})
    columns = [t.theme_id for t in model.themes] + [-1]
    rows = []
    for name in names:
        mine = np.array(
            [label for u, label in zip(model.units, model.labels, strict=True) if u.municipality == name]
        )
        row: dict = {"municipality": name, "passages": len(mine)}
        for theme in columns:
            count = int((mine == theme).sum())
            row[f"theme_{theme}"] = count
            row[f"share_{theme}"] = round(count / len(mine), 3)
        rows.append(row)
    return rows


def save_model(model: ThemeModel, path: Path) -> None:
    """The fitted themes as plain JSON: centroids, floor, and each passage's theme by sentence id."""
    from pipeline.io import atomic_write_text

    atomic_write_text(
        path,
        json.dumps(
            {
                "themes": [t.model_dump() for t in model.themes],
                "centroids": np.round(model.centroids, 6).tolist(),
                "floor": model.floor,
                "assignments": model.assignments(),
            },
            ensure_ascii=False,
        ),
    )


def load_assignments(path: Path) -> dict[str, int] | None:
    if not path.exists():
        return None
    return {k: int(v) for k, v in json.loads(path.read_text(encoding="utf-8"))["assignments"].items()}


def load_fitted(path: Path) -> tuple[np.ndarray, float, list[dict]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return np.array(data["centroids"], dtype=np.float32), float(data["floor"]), data["themes"]


def map_points(model: ThemeModel, seed: int) -> np.ndarray:
    """The units on two dimensions: PCA of the centred embeddings (the explorer's and the PNG's map)."""
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(model.vectors - model.vectors.mean(axis=0))


def explorer_html(model: ThemeModel, points: np.ndarray) -> str:
    """A self-contained page (plotly inlined): the passages on a 2-D map coloured by theme, hover for the
    passage, click to read it with its source, a search box that highlights matching passages. Scraped text is
    escaped for hover labels (plotly renders them as HTML) and shown with textContent in the panel."""
    import plotly.graph_objects as go

    labels = {t.theme_id: t.label for t in model.themes}
    figure = go.Figure()
    for theme in [*[t.theme_id for t in model.themes], -1]:
        members = np.flatnonzero(model.labels == theme)
        if not len(members):
            continue
        units = [model.units[i] for i in members]
        figure.add_trace(
            go.Scattergl(
                x=points[members, 0],
                y=points[members, 1],
                mode="markers",
                name=f"{theme}: {labels.get(theme, OUTLIER)}",
                marker={"size": 7, "opacity": 0.8},
                hovertext=[
                    f"{html.escape(u.municipality)} · {html.escape(u.sentence.section)}<br>{html.escape(u.text[:160])}"
                    for u in units
                ],
                hoverinfo="text",
                customdata=[
                    [
                        u.text,
                        u.municipality,
                        u.sentence.effort_id,
                        u.sentence.section,
                        labels.get(theme, OUTLIER),
                    ]
                    for u in units
                ],
            )
        )
    figure.update_layout(
        title="Good-practice passages (PCA of e5 embeddings; colour: theme)",
        xaxis_title="first principal component",
        yaxis_title="second principal component",
        height=700,
        legend={"font": {"size": 10}},
    )
    plot = figure.to_html(full_html=False, include_plotlyjs=True, div_id="themes-map")
    return EXPLORER_PAGE.replace("{{PLOT}}", plot)


EXPLORER_PAGE = """<!doctype html>
<html lang="da"><head><meta charset="utf-8"><title>evidens: theme explorer</title>
<style>body{font-family:sans-serif;margin:1em}#panel{border:1px solid #ccc;padding:.6em;min-height:4em;
white-space:pre-wrap}#search{width:30em}</style></head><body>
<h1>Good-practice themes</h1>
<p>Hover a point to see its passage; click it to read the passage with its source. Search highlights the
passages that contain the words.</p>
<input id="search" type="search" placeholder="search passages, e.g. fysiske rammer">
<span id="hits"></span>
{{PLOT}}
<h2>Selected passage</h2><div id="panel">(click a point)</div>
<script>
const plot = document.getElementById('themes-map');
const panel = document.getElementById('panel');
plot.on('plotly_click', (event) => {
  const d = event.points[0].customdata;
  panel.textContent = d[0] + '\\n\\n' + d[1] + ' · effort ' + d[2] + ' · section ' + d[3] + ' · theme: ' + d[4];
});
document.getElementById('search').addEventListener('input', (event) => {
  const words = event.target.value.toLowerCase().split(/\\s+/).filter(Boolean);
  let hits = 0;
  const opacities = plot.data.map((trace) => trace.customdata.map((d) => {
    const match = words.length === 0 || words.every((w) => d[0].toLowerCase().includes(w));
    if (match && words.length) hits += 1;
    return match ? 0.9 : 0.08;
  }));
  Plotly.restyle(plot, {'marker.opacity': opacities});
  document.getElementById('hits').textContent = words.length ? hits + ' passages match' : '';
});
</script></body></html>
"""


def write_theme_outputs(model: ThemeModel, out: Path, seed: int = 0) -> list[Path]:
    """themes_info.csv, themes.csv, themes_by_municipality.csv, themes.json, themes_explorer.html, the two
    PNGs and themes_model.json."""
    from pipeline.io import atomic_path, atomic_write_text
    from pipeline.tables import write_table

    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "themes_info.csv", info_rows(model), list(INFO_COLUMNS))
    write_table(out / "themes.csv", passage_rows(model), list(PASSAGE_COLUMNS))
    profile = municipality_profile(model)
    write_table(out / "themes_by_municipality.csv", profile, list(profile[0]))
    atomic_write_text(
        out / "themes.json",
        json.dumps(
            {
                "silhouette_by_k": model.silhouettes,
                "coverage": coverage(model.labels),
                "outliers": int((model.labels < 0).sum()),
                "themes": [t.model_dump() for t in model.themes],
            },
            ensure_ascii=False,
            indent=1,
        ),
    )
    points = map_points(model, seed)
    atomic_write_text(out / "themes_explorer.html", explorer_html(model, points))
    with atomic_path(out / "themes_map.png") as path:
        _map_png(model, points, path)
    with atomic_path(out / "themes_by_municipality.png") as path:
        _by_municipality_png(model, profile, path)
    save_model(model, out / MODEL_FILE)
    names = ("themes_info.csv", "themes.csv", "themes_by_municipality.csv", "themes.json", "themes_explorer.html",
             "themes_map.png", "themes_by_municipality.png", MODEL_FILE)  # fmt: skip
    return [out / name for name in names]


def _map_png(model: ThemeModel, points: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 6.5))
    colours = plt.get_cmap("tab20")
    for theme in model.themes:
        members = model.labels == theme.theme_id
        axis.scatter(points[members, 0], points[members, 1], s=14, color=colours(theme.theme_id % 20),
                     label=f"{theme.theme_id}: {theme.label}")  # fmt: skip
    outliers = model.labels < 0
    if outliers.any():
        axis.scatter(points[outliers, 0], points[outliers, 1], s=10, color="lightgrey", label="outliers")
    axis.set_xlabel("first principal component of the e5 embeddings")
    axis.set_ylabel("second principal component")
    axis.set_title("Practice passages by theme (interactive version: themes_explorer.html)", fontsize=10)
    axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1, 0.5))
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png", bbox_inches="tight")  # the legend sits outside the axes
    plt.close(figure)


def _by_municipality_png(model: ThemeModel, profile: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["municipality"] for row in profile]
    shares = np.array([[row[f"share_{t.theme_id}"] for row in profile] for t in model.themes])
    figure, axis = plt.subplots(figsize=(1.5 + 0.8 * len(names), 1.0 + 0.35 * len(model.themes)))
    axis.imshow(shares, cmap="Greens", aspect="auto")
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(model.themes)), [f"{t.theme_id}: {t.label}" for t in model.themes], fontsize=7)
    for (i, j), value in np.ndenumerate(shares):
        if value:
            axis.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=6)
    axis.set_title("Share of each municipality's practice passages in each theme", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110, format="png")
    plt.close(figure)


# -- questions researchers ask of the written themes -------------------------------------------------------
@dataclass
class ThemeMunicipalities:
    theme_id: int
    label: str
    municipalities: list[tuple[str, int, str]]  # (municipality, passages, one passage)


def _passages(folder: Path) -> list[dict]:
    from pipeline.errors import EvidensError
    from pipeline.tables import read_csv

    path = folder / "themes.csv"
    if not path.exists():
        raise EvidensError(f"{path} not found: run `evidens themes --out {folder}` first")
    return read_csv(path, PASSAGE_COLUMNS)


def municipalities_describing(folder: Path, query: str) -> list[ThemeMunicipalities]:
    """The themes that `query` names (an id, or words of a label or keyword) and the municipalities in each,
    most passages first."""
    from pipeline.errors import EvidensError
    from pipeline.tables import read_csv

    info = read_csv(folder / "themes_info.csv", INFO_COLUMNS) if (folder / "themes_info.csv").exists() else []
    words = query.lower().split()
    chosen = [
        row
        for row in info
        if row["theme_id"] == query.strip()
        or (words and all(w in f"{row['label']} {row['keywords']}".lower() for w in words))
    ]
    if not chosen:
        raise EvidensError(f"no theme matches {query!r} in {folder / 'themes_info.csv'}")
    passages = _passages(folder)
    found = []
    for row in chosen:
        mine = [p for p in passages if p["theme_id"] == row["theme_id"]]
        counts = Counter(p["municipality"] for p in mine)
        found.append(
            ThemeMunicipalities(
                int(row["theme_id"]),
                row["label"],
                [
                    (name, n, next(p["sentence"] for p in mine if p["municipality"] == name))
                    for name, n in counts.most_common()
                ],
            )
        )
    return found


def themes_shared_by(folder: Path, effort: str) -> list[tuple[int, str, int, list[tuple[str, int]]]]:
    """For the effort (an id, or a municipality's name): each of its themes, its passages there, and the other
    municipalities with passages in the theme (most first)."""
    from pipeline.errors import EvidensError

    passages = [p for p in _passages(folder) if p["theme_id"] != "-1"]
    target = effort.lower()
    mine = [p for p in passages if p["effort_id"] == effort or p["municipality"].lower() == target]
    if not mine:
        raise EvidensError(f"no passage of {effort!r} is in a theme in {folder / 'themes.csv'}")
    own = {p["effort_id"] for p in mine}
    shared = []
    for theme_id, count in Counter(p["theme_id"] for p in mine).most_common():
        others = Counter(
            p["municipality"] for p in passages if p["theme_id"] == theme_id and p["effort_id"] not in own
        )
        label = next(p["theme_label"] for p in mine if p["theme_id"] == theme_id)
        shared.append((int(theme_id), label, count, others.most_common()))
    return shared
