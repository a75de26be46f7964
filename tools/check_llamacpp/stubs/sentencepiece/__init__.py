# Stand-in for sentencepiece: convert_hf_to_gguf.py imports it before looking for tokenizer.model;
# ARWKV checkpoints have a byte-level BPE tokenizer.json instead, so it is never used.
class SentencePieceProcessor:
    pass
