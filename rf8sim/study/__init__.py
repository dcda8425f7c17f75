"""Studies on top of the three implementations, one folder per workload: ``flow`` (the co-design flow),
``mnist1d``, ``minilm``, ``tinylm``, ``zoo``, ``claims`` (the paper's claims); ``common`` holds what they share
(configuration, statistics, tables and plots; datasets and models are :mod:`rf8sim.workloads`); ``commands`` is
the CLI."""
