"""evidens: evidence for the self-assessments on Danish municipal employment-effort pages."""

__version__ = "0.1.0"
