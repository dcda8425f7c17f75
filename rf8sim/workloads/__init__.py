"""What every part runs on: the datasets (MNIST-1D, CPython's help text, real sentences) and the
models (MNIST-1D MLP/CNN, TinyLM, the pure-torch all-MiniLM-L6-v2 with its real weights)."""
