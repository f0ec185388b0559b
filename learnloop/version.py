"""The package version, in one place for the package, the CLI and the files learnloop writes."""

__version__ = "0.1.0"
