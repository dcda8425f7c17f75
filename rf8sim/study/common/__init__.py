"""Shared by every study: the study configuration (TOML), statistics, datasets, models, tables and plots."""
