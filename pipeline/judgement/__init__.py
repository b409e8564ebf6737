"""Judgement: from a page's evidence to Ja / Delvist / Nej.

model.py is `EvidensModel` (body + head + prior); stated.py the stated detector and its gold; requirements.py
the requirement comparison; heads.py the swappable heads (ordinal.py the ordinal classifier); evaluate.py
leave-one-effort-out with baselines; stated_eval.py the detector's candidates under leave-one-source-out."""
