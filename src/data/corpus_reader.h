// Reads the raw documents of a training corpus, in a fixed order, from the inputs of `arwkv data`:
//   a text file          one document (or, with split_paragraphs, one per blank-line-separated block)
//   a .jsonl file        one document per line: {"text": "..."} or a chat {"messages": [{"role",
//                        "content"}, ...]}; blank lines are skipped
//   a directory          every text-like file below it (sorted by path; hidden files skipped): *.jsonl
//                        as above, other files when they look like UTF-8 text (no NUL byte, valid
//                        UTF-8 at the start)
// Any of these may be gzip-compressed (name ending in .gz; read through `gzip -dc`).
// Errors name the file, and the line for JSONL: file:line: problem.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/data_format.h"
#include "tokenizer/chat.h"

namespace arwkv {

struct RawDocument {
  size_t input = 0;           // index into the inputs
  std::string source;         // "file" or "file:line", for messages
  std::string text;           // a plain-text document
  std::vector<ChatMessage> messages;  // a chat document (then text is empty)
  bool is_chat() const { return !messages.empty(); }
};

struct CorpusOptions {
  bool split_paragraphs = false;
};

// Calls emit for every non-empty document of the inputs, in order. Fills inputs_out (one entry per
// input: its path, kind and number of files). Throws arwkv::Error naming the file (and line).
void read_corpus(const std::vector<std::string>& inputs, const CorpusOptions& opt,
                 const std::function<void(RawDocument&&)>& emit, std::vector<DataInput>& inputs_out);

// One line of chat or text JSONL parsed into doc (text or messages); throws naming source.
void parse_jsonl_document(const std::string& line, const std::string& source, RawDocument& doc);

// Splits text at blank lines (lines of only whitespace); blocks with no visible text are dropped.
std::vector<std::string> split_paragraphs(const std::string& text);

}  // namespace arwkv
