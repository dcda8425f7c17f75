"""MNIST-1D: the accuracy-vs-area sweep, its training pipeline, bit-exact MLP inference, RF8 variants,
the sweeps' records and the cluster scaling measurement."""
