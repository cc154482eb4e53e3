"""PyTorch definitions of MagicPortrait's networks: one module per network (networks.md)."""
