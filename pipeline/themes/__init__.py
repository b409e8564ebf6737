"""Good-practice themes: passages, clustering, keyphrases (model.py), their tables, explorer and questions
(output.py), and the comparison with BERTopic (evaluate.py)."""
