"""The report of a run: its HTML, cells, charts, the reports index and the run record notebooks write."""
