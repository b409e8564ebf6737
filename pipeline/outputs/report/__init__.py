"""The analysts' HTML report: one self-contained file, every piece of scraped text escaped."""

from pipeline.outputs.report.content import ReportContent
from pipeline.outputs.report.html import render_report, report_identity, write_report
from pipeline.outputs.report.rows import ReportRow

__all__ = ["ReportContent", "ReportRow", "render_report", "report_identity", "write_report"]
