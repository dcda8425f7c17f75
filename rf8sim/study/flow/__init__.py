"""The co-design flow (``rf8sim flow`` = ``make demo``): stages, report, the answer up front, records."""
