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

INFO_COLUMNS = (
    "theme_id",
    "size",
    "label",
    "pinned",
    "label_checks",
    "keywords",
    "municipalities",
    "representative",
    "representative_source",
    "representative_2",
    "representative_2_source",
    "representative_3",
    "representative_3_source",
)
PIN_STATUS_COLUMNS = ("label", "theme_id", "status", "fitted_label", "sentence_ids")
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


def source_of(model: ThemeModel, index: int) -> str:
    """Where a passage comes from: municipality (or report), effort id and section."""
    unit = model.units[index]
    return f"{unit.municipality} · {unit.sentence.effort_id} · {unit.sentence.section}"


def info_rows(model: ThemeModel) -> list[dict]:
    rows = []
    for t in model.themes:
        shown = model.representatives.get(t.theme_id, [])
        row = {
            "theme_id": t.theme_id,
            "size": t.size,
            "label": t.label,
            "pinned": "yes" if t.theme_id in model.pinned else "",
            "label_checks": " | ".join(model.checks.get(t.theme_id, [])),
            "keywords": " | ".join(t.keywords),
            "municipalities": " | ".join(t.municipalities),
        }
        for n, suffix in enumerate(("", "_2", "_3")):
            row[f"representative{suffix}"] = model.units[shown[n]].text if n < len(shown) else ""
            row[f"representative{suffix}_source"] = source_of(model, shown[n]) if n < len(shown) else ""
        rows.append(row)
    return rows


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
                "anchors": {str(k): v for k, v in model.anchors.items()},
                "hierarchy": np.round(model.hierarchy, 6).tolist(),
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


def theme_colour(theme_id: int) -> str:
    """A colour per theme, distinct for any number of themes: hues a golden angle apart, alternating
    lightness; outliers grey."""
    if theme_id < 0:
        return "hsl(0,0%,70%)"
    return f"hsl({theme_id * 137.508 % 360:.1f},70%,{42 if theme_id % 2 else 55}%)"


def _script_json(value) -> str:
    """JSON safe inside a <script> element: no "</script>" or "<!--" can close it."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")


def explorer_data(model: ThemeModel) -> dict:
    """What the explorer's script shows per theme: label, keywords with the theme's passages holding each,
    and its passages grouped by source. Raw text: the page shows it with textContent only."""
    themes = []
    for t in model.themes:
        members = np.flatnonzero(model.labels == t.theme_id)
        texts = [model.units[i].text.lower() for i in members]
        by_source: dict[str, list[str]] = {}
        for i in members:
            unit = model.units[i]
            by_source.setdefault(f"{unit.municipality} · {unit.kind}", []).append(unit.text)
        themes.append(
            {
                "id": t.theme_id,
                "label": t.label,
                "colour": theme_colour(t.theme_id),
                "keywords": t.keywords,
                "keyword_passages": [sum(k.lower() in x for x in texts) for k in t.keywords],
                "representatives": [
                    [model.units[i].text, source_of(model, i)]
                    for i in model.representatives.get(t.theme_id, [])
                ],
                "sources": sorted(by_source.items(), key=lambda item: (-len(item[1]), item[0])),
            }
        )
    return {"themes": themes}


def explorer_html(model: ThemeModel, points: np.ndarray) -> str:
    """A self-contained page (plotly inlined once): the passages on a 2-D map (colour and number per theme, no
    legend over the plot), Ward's tree of the themes, a municipality x theme heatmap, and for a chosen theme
    its keyword bars, representative passages and passages grouped by source. Scraped text is escaped for
    plotly's hover labels (rendered as HTML) and shown with textContent elsewhere; the page's data is JSON
    with < and > escaped."""
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
                name=html.escape(f"{theme}: {labels.get(theme, OUTLIER)}"),
                marker={"size": 7, "opacity": 0.8, "color": theme_colour(theme)},
                hovertext=[
                    f"theme {theme}: {html.escape(labels.get(theme, OUTLIER))}<br>"
                    f"{html.escape(u.municipality)} · {html.escape(u.sentence.section)}<br>"
                    f"{html.escape(u.text[:160])}"
                    for u in units
                ],
                hoverinfo="text",
                customdata=[
                    [u.text, u.municipality, u.sentence.effort_id, u.sentence.section, theme] for u in units
                ],
            )
        )
        if theme >= 0:  # the theme's number at its centre: themes told apart without colour
            figure.add_annotation(
                x=float(points[members, 0].mean()), y=float(points[members, 1].mean()), text=str(theme),
                showarrow=False, font={"size": 13, "color": "black"}, bgcolor="rgba(255,255,255,0.7)",
            )  # fmt: skip
    compact = {"l": 40, "r": 10, "t": 40, "b": 40}
    figure.update_layout(
        title="Passages by theme (PCA of e5)", showlegend=False, autosize=True,
        height=520, margin=compact,
    )  # fmt: skip
    config = {"responsive": True, "displaylogo": False}
    parts = [figure.to_html(full_html=False, include_plotlyjs=True, div_id="themes-map", config=config)]
    parts.append(_tree_figure(model).to_html(full_html=False, include_plotlyjs=False, div_id="themes-tree",
                                             config=config))  # fmt: skip
    parts.append(_heatmap_figure(model).to_html(full_html=False, include_plotlyjs=False, div_id="themes-heatmap",
                                                config=config))  # fmt: skip
    page = EXPLORER_PAGE.replace("{{MAP}}", parts[0]).replace("{{TREE}}", parts[1])
    page = page.replace("{{HEATMAP}}", parts[2])
    return page.replace("{{DATA}}", _script_json(explorer_data(model)))


def _tree_figure(model: ThemeModel):
    """Ward's tree of the themes (model.hierarchy) drawn from scipy's dendrogram coordinates."""
    import plotly.graph_objects as go
    from scipy.cluster.hierarchy import dendrogram

    figure = go.Figure()
    if len(model.hierarchy):
        names = [html.escape(f"{t.theme_id}: {t.label}") for t in model.themes]
        tree = dendrogram(model.hierarchy, orientation="right", no_plot=True, labels=names)
        for xs, ys in zip(tree["dcoord"], tree["icoord"], strict=True):
            figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "#555"}, hoverinfo="skip"))
        ticks = [5 + 10 * i for i in range(len(tree["ivl"]))]
        figure.update_yaxes(tickvals=ticks, ticktext=tree["ivl"], tickfont={"size": 10})
    figure.update_layout(title="Ward's tree of the themes", showlegend=False, autosize=True,
                         height=max(320, 22 * len(model.themes)), margin={"l": 10, "r": 10, "t": 40, "b": 30},
                         xaxis_title="Ward distance")  # fmt: skip
    figure.update_yaxes(automargin=True)
    return figure


def _heatmap_figure(model: ThemeModel):
    """Municipality x theme: the share of each municipality's passages in each theme; hover for the count."""
    import plotly.graph_objects as go

    profile = municipality_profile(model)
    names = [html.escape(row["municipality"]) for row in profile]
    ids = [t.theme_id for t in model.themes]
    shares = [[row[f"share_{t}"] for t in ids] for row in profile]
    hover = [
        [f"{name}<br>theme {t}: {html.escape(model.themes[j].label)}<br>{row[f'theme_{t}']} passages"
         for j, t in enumerate(ids)]
        for name, row in zip(names, profile, strict=True)
    ]  # fmt: skip
    figure = go.Figure(
        go.Heatmap(z=shares, x=[str(t) for t in ids], y=names, colorscale="Greens", hovertext=hover,
                   hoverinfo="text", colorbar={"title": "share", "thickness": 10})
    )  # fmt: skip
    figure.update_layout(title="Municipality × theme: share", autosize=True,
                         height=max(320, 28 * len(names) + 120), margin={"l": 10, "r": 10, "t": 40, "b": 40},
                         xaxis_title="theme")  # fmt: skip
    figure.update_yaxes(automargin=True)
    return figure


EXPLORER_PAGE = """<!doctype html>
<html lang="da"><head><meta charset="utf-8"><title>evidens: theme explorer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;margin:.6em;max-width:1400px}#panel,#passages{border:1px solid #ccc;
padding:.6em;white-space:pre-wrap}#search{width:100%;max-width:30em;box-sizing:border-box}select{max-width:100%}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}@media (max-width:800px){.grid{grid-template-columns:1fr}}
.swatch{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
.bar{background:#4a7;height:1em;display:inline-block;vertical-align:middle}.kw{display:grid;
grid-template-columns:minmax(8em,14em) 1fr;gap:.2em .5em;align-items:center}h3{margin:.6em 0 .2em}</style>
</head><body>
<h1>Good-practice themes</h1>
<p>Hover a point to see its passage; click it to read it with its source. Choose a theme for its keywords,
representative passages and passages by source. Search highlights the passages that contain the words.</p>
<input id="search" type="search" placeholder="search passages, e.g. fysiske rammer"> <span id="hits"></span>
{{MAP}}
<h2>Selected passage</h2><div id="panel">(click a point)</div>
<h2>A theme</h2><label>theme <select id="theme"></select></label>
<div class="grid"><div><h3>Keywords (bars: the theme's passages holding each)</h3><div id="keywords" class="kw">
</div><h3>Representative passages</h3><ol id="representatives"></ol></div>
<div><h3>Passages by source</h3><div id="passages"></div></div></div>
<div class="grid"><div>{{TREE}}</div><div>{{HEATMAP}}</div></div>
<script>
const DATA = {{DATA}};
const plot = document.getElementById('themes-map');
const panel = document.getElementById('panel');
const select = document.getElementById('theme');
function el(tag, text) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; }
DATA.themes.forEach((t) => { const o = el('option', t.id + ': ' + t.label); o.value = t.id; select.appendChild(o); });
function showTheme(id) {
  const t = DATA.themes.find((x) => String(x.id) === String(id)); if (!t) return;
  select.value = t.id;
  const kw = document.getElementById('keywords'); kw.replaceChildren();
  const top = Math.max(1, ...t.keyword_passages);
  t.keywords.forEach((k, i) => {
    kw.appendChild(el('span', k));
    const cell = el('span'); const bar = el('span'); bar.className = 'bar';
    bar.style.width = (100 * t.keyword_passages[i] / top) + '%'; bar.style.background = t.colour;
    cell.appendChild(bar); cell.appendChild(el('span', ' ' + t.keyword_passages[i])); kw.appendChild(cell);
  });
  const reps = document.getElementById('representatives'); reps.replaceChildren();
  t.representatives.forEach(([text, source]) => { const li = el('li', text + ' '); li.appendChild(el('em', '(' + source + ')')); reps.appendChild(li); });
  const box = document.getElementById('passages'); box.replaceChildren();
  t.sources.forEach(([source, texts]) => {
    const d = el('details'); d.appendChild(el('summary', source + ' (' + texts.length + ')'));
    texts.forEach((x) => d.appendChild(el('p', x))); box.appendChild(d);
  });
}
select.addEventListener('change', (e) => showTheme(e.target.value));
if (DATA.themes.length) showTheme(DATA.themes[0].id);
plot.on('plotly_click', (event) => {
  const d = event.points[0].customdata;
  panel.textContent = d[0] + '\\n\\n' + d[1] + ' · effort ' + d[2] + ' · section ' + d[3] + ' · theme ' + d[4];
  showTheme(d[4]);
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
                "label_checks": model.check_counts(),
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
    names = ["themes_info.csv", "themes.csv", "themes_by_municipality.csv", "themes.json", "themes_explorer.html",
             "themes_map.png", "themes_by_municipality.png", MODEL_FILE]  # fmt: skip
    if model.pins is not None:  # what became of every pin: kept, merged, no longer matches
        write_table(out / "themes_pins.csv", model.pins.rows(), list(PIN_STATUS_COLUMNS))
        names.append("themes_pins.csv")
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


def themes_for(efforts, embedder, out: Path, assign: bool = False) -> tuple[ThemeModel, dict | None]:
    """The themes of the efforts for `evidens themes`: assigned to the themes already in `out` (`assign`), or
    fitted anew; a re-fit over earlier themes also writes themes_drift.json and returns the drift."""
    import json

    from pipeline.errors import EvidensError
    from pipeline.io import atomic_write_text
    from pipeline.themes.model import assign_themes, find_themes, theme_drift

    if assign:
        if not (out / MODEL_FILE).exists():
            raise EvidensError(f"{out / MODEL_FILE} not found: run `evidens themes` once without --assign")
        return assign_themes(efforts, embedder, *load_fitted(out / MODEL_FILE)), None
    previous = load_assignments(out / MODEL_FILE)
    model = find_themes(efforts, embedder)
    if previous is None:
        return model, None
    drift = theme_drift(previous, model.assignments())
    atomic_write_text(out / "themes_drift.json", json.dumps(drift, indent=1))
    return model, drift
