"""``mledge report``: runs, bundles and benches as one self-contained HTML page (no TensorFlow)."""
