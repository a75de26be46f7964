class TokenizerVersion:
    pass
