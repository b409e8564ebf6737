"""Test scaffolding, outside the package: generated variants of the corpus pages (batch tests and benchmarks),
and a tiny sentence-transformers model built locally (the `st:` backend's tests and benchmark).

Never data: every page variant names itself "Genereret testkommune N" and carries a sentence saying it was
generated; the tiny model's weights are random, so it exercises the loading and encoding path of a real
sentence-transformers folder without any download and says nothing about retrieval quality.

A variant of page i (taken round-robin from the sources) gets a fictitious municipality, a shuffled order of
answers within each test, one sentence of each free-text paragraph dropped at random where there are several,
and a generated marker sentence, so that every variant has its own content hash and its own embeddings.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pipeline.ingest.readers import read_page

_ANSWER_LINE = re.compile(r"^\s*•\s*(Ja|Delvist|Nej):")
_TEST_HEADING = re.compile(r"^(Evidenstest|God praksis test)\b", re.IGNORECASE)
_FREE_TEXT_MIN = 60  # characters: headings, furniture, scores and target groups are shorter


def vary_page(text: str, number: int, rng: random.Random) -> str:
    lines = text.split("\n")
    first = next(i for i, line in enumerate(lines) if line.strip())
    lines[first] = f"Genereret testkommune {number}"
    varied, answers = [], []
    for line in [*lines, ""]:
        if _ANSWER_LINE.match(line):
            answers.append(line)
            continue
        if answers:
            rng.shuffle(answers)
            varied.extend(answers)
            answers = []
        sentences = re.split(r"(?<=\.) (?=[A-ZÆØÅ])", line)
        if len(sentences) > 2 and not line.lstrip().startswith("•"):
            del sentences[rng.randrange(1, len(sentences))]  # never the first: it may carry a page number
            line = " ".join(sentences)
        if len(line) > _FREE_TEXT_MIN and not _TEST_HEADING.match(line.strip()):
            line = re.sub(r"([.!?])(?=\s|$)", rf" [v{number}]\1", line)
        varied.append(line)
    marker = f"Denne side er genereret til test (variant {number})."
    for index, line in enumerate(varied):
        if line.strip() == "Kommunens beskrivelse af indsatsen":
            varied.insert(index + 2, marker)
            break
    else:
        varied.append(marker)
    return "\n".join(varied).rstrip("\n") + "\n"


def varied_pages(sources: Sequence[Path], count: int, seed: int = 0) -> Iterator[tuple[str, str]]:
    """(file name, text) of `count` generated variants of the source pages."""
    rng = random.Random(seed)
    texts = [(path.stem, read_page(path)) for path in sources]
    for number in range(count):
        stem, text = texts[number % len(texts)]
        yield f"generated_{number:04d}_{stem}.txt", vary_page(text, number, rng)


def write_varied_pages(sources: Sequence[Path], folder: Path, count: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in varied_pages(sources, count, seed):
        (folder / name).write_text(text, encoding="utf-8")
        written.append(folder / name)
    return written


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_sentence_transformer(folder: Path, texts: Sequence[str], seed: int = 0) -> Path:
    """Train a small WordPiece vocabulary on texts, wrap a 2-layer BERT in mean pooling, save to folder."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors, trainers
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    transformer_dir = folder / "transformer"
    BertModel(config).save_pretrained(transformer_dir)
    fast.save_pretrained(transformer_dir)
    word = Transformer(str(transformer_dir), max_seq_length=256)
    dimension = getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension
    pooling = Pooling(dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(folder / "model"))
    return folder / "model"


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWPORT = {"width": 1600, "height": 1000}  # a laptop screen at full width


def chromium_path() -> str | None:
    """The system's Chromium (Debian: apt-get install chromium), which Playwright drives."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser_page() -> Iterator:
    """A Playwright page in headless system Chromium, offline by its flags; closed on exit (the browser tests
    and scripts/screenshots.py)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("no Chromium on PATH (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=VIEWPORT, accept_downloads=True)
        finally:
            browser.close()
