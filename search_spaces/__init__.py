"""Search spaces: genomes, their validity rules, encodings, and the networks they build."""
