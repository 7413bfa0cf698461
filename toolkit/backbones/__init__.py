"""ImageNet-pretrained backbones, ported to Keras, with weights imported once into a local cache."""
