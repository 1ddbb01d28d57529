"""searchlab: one engine for neural architecture search and evolutionary model compression.

The Python API (docs/python.md): `search`, `resume`, `open_run`, `Run`, `nasbench101_query`,
`nasbench201_query`, `train_predictor`, `predict`, `compare`. They load on first use, so
`import searchlab` stays instant; `dir(searchlab)` (and tab completion) lists them all the same.
"""

__version__ = "0.1.0"

_API = ("search", "resume", "open_run", "Run", "nasbench101_query", "nasbench201_query", "train_predictor",
        "predict", "compare")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from searchlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'searchlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
