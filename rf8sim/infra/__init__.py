"""Infrastructure every part builds on: atomic files, records, the cache root, the cluster fan-out,
local Ray clusters, runtime resources, generated docs, tool probes, the console."""
