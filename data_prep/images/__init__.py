"""Image features of a caption corpus: a fixed CNN's features, extracted once and cached. Imports
``corpora`` (Karpathy split files, the built-in caption set) of ``data_prep``. One module a line:

    ``image_features``        fixed CNN image features, extracted once and cached
    ``feature_cache``         the cache's on-disk convention (kind, version, rebuild hint)
    ``small_cnn_encoder``     the built-in recipe's small CNN, pretrained on shape labels, then frozen
    ``torchvision_encoders``  VGG-16 fc7 (the paper's) and ResNet-50 features through torchvision
"""
