"""Shared by every study: the study configuration (TOML), statistics, tables and plots (datasets and models:
:mod:`rf8sim.workloads`)."""
