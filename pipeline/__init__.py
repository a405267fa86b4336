"""MineWatch: watch open-pit mine restoration and new excavation from Sentinel-2 time series."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("minewatch")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
