// The raw training corpus (src/data/corpus_reader.cpp, tokenize_doc.cpp): one input file of `arwkv
// data`, plain text or JSONL of texts and chats, read into documents and tokenized with SmolLM2's
// tokenizer as `arwkv data` tokenizes them (chats through its ChatML template, with their loss
// masks). Bit 0 of the first byte chooses JSONL, bit 1 splitting plain text at blank lines; the
// rest is the file. A tokenized document holds real ids and, for a chat, one mask byte per token.
#include "data/corpus_reader.h"
#include "data/tokenize_doc.h"
#include "fixtures.h"

using namespace arwkv;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::smollm2_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const Tokenizer& tok = fuzz::smollm2_tokenizer();
  const std::string path =
      fuzz::write_scratch(mode & 1 ? "corpus.jsonl" : "corpus.txt", fuzz::as_text(data + 1, size - 1));
  std::vector<DataInput> inputs;
  fuzz::accepts([&] {
    read_corpus({path}, {.split_paragraphs = (mode & 2) != 0}, [&](RawDocument&& doc) {
      const TokenizedDocument t = doc.is_chat() ? tokenize_chat(tok, doc.messages, doc.source) : tokenize_text(tok, doc.text);
      if (doc.is_chat() ? t.mask.size() != t.ids.size() : !t.mask.empty()) std::abort();
      for (int32_t id : t.ids)
        if (id < 0 || id >= tok.vocab_size()) std::abort();
    }, inputs);
  });
  return 0;
}
