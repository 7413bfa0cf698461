"""The MediaPipe suite loads the edge suite's bundles (``make test-mediapipe`` builds them first)."""

from tests.edge.conftest import bundles, fixtures, test_images  # noqa: F401
