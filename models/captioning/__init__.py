"""Image captioning: NeuralTalk (Karpathy & Fei-Fei 2015), the captioner of the DSD paper's Sec. 4.3.

Recipes name the task as ``task: models.captioning.caption_task:build_task``. One module a line, from the
network to the tool that captions files:

    ``neuraltalk``         NeuralTalk: image feature in, an LSTM over words, beam search
    ``caption_task``       the captioning task: Karpathy split + cached image features in, BLEU and
                           the COCO caption metrics out
    ``image_captioner``    captions image files: the package's image encoder, then NeuralTalk's beam search
"""
