"""File input and output: images, videos, frame folders."""
