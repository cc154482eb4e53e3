"""Triangle meshes: per-vertex attributes and CPU rasterisation (numpy), below flame/ and guidance/."""
