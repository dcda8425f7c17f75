"""The format zoo: SQNR, bits per weight and MiniLM cosine of every format, its record and docs."""
