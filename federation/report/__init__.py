"""The comparison report: Markdown with matplotlib plots."""
