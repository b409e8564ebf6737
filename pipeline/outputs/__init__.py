"""Outputs for analysts: flags (flags.py), the HTML report (report/), the review loop (review.py) and the
flags' agreement with the hand-checked support set (support.py)."""
