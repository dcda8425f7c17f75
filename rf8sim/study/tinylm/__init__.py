"""TinyLM: the flow's held-out bits per byte study and the thesis (GG prior / QAT) study."""
