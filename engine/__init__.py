"""magicportrait-rt: inference engine for MagicPortrait (arXiv 2504.21497)."""

__version__ = "0.1.0"
