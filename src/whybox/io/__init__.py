"""Input/output: plots, reports, model and data files."""
