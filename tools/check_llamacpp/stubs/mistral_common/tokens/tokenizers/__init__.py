# Stand-in for the mistral_common package, which llama.cpp's convert_hf_to_gguf.py imports at the top
# but uses only for Mistral models; lets the converter run on ARWKV checkpoints without it.
