"""Data files shipped with the package (the built-in trained model: synthetic_heads/)."""
