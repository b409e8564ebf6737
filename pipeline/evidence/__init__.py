"""Evidence: sentences (spaCy segmentation), the rankers and their fusion, and the retrieval evaluation.

segment.py splits sections into sentences and headings; retrieval.py scores every criterion against its page's
sentences (e5, character TF-IDF, BM25 on requirement parts, BM25 in context, late interaction) and fuses them;
evaluate.py measures the rankings against the gold evidence."""
