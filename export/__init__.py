"""Keras run -> TFLite (LiteRT) bundle, in four quantization modes."""
