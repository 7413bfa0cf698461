"""Keras run -> TFLite (LiteRT) bundle, in five quantization modes."""
