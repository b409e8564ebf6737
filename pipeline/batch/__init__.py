"""Unattended scoring: incremental, resumable batch runs over scraped pages (run.py) and Spark (spark.py)."""
