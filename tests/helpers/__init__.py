"""Test helpers (no tests here): fakes, fixtures and scenes shared by several test files (and the guidance
benchmarks, which import kernel_demo_scene as tests.helpers.kernel_demo_scene)."""
