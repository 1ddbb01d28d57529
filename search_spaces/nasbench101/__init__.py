"""NAS-Bench-101 (Ying et al., ICML 2019): cell specs, networks, full enumeration and a TF-free table."""
