"""The analysts' HTML report: one self-contained file, every piece of scraped text escaped."""

from pipeline.outputs.report.html import ReportRow, render_report, report_identity, write_report

__all__ = ["ReportRow", "render_report", "report_identity", "write_report"]
