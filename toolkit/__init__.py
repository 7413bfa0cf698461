"""multilabel-edge: train multi-label Keras models, export them to LiteRT and run them on the edge."""

__version__ = "0.1.0"
