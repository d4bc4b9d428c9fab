"""Text units: what a transcript becomes as labels, and a word LM. Imports nothing else of ``data_prep``.
One module a line:

    ``vocab``           DeepSpeech's character vocabulary: blank, space, apostrophe, a-z
    ``subword_units``   SentencePiece units (BPE or unigram), an alternative to characters
    ``ngram_lm``        a small word bigram LM in ARPA format, for LM decoding
"""
