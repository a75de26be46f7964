class SentencePieceTokenizer:
    pass
