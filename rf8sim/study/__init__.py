"""Studies on top of the three implementations: the co-design flow, accuracy-vs-area sweeps, the paper's claims."""
