"""all-MiniLM-L6-v2: the transformer study, bit-exact transformer inference and its costs."""
