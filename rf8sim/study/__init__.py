"""Studies on top of the three implementations, one folder per workload: ``flow`` (the co-design flow),
``mnist1d``, ``minilm``, ``tinylm``, ``zoo``, ``claims`` (the paper's claims); ``common`` holds what they share
(configuration, statistics, data, models, tables and plots); ``commands`` is the CLI."""
