// Corpus inputs → raw documents (see corpus_reader.h).
#include "data/corpus_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "tokenizer/utf8.h"

namespace arwkv {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_gzip(const std::string& path) { return ends_with(path, ".gz"); }
bool is_jsonl(const std::string& path) { return ends_with(path, ".jsonl") || ends_with(path, ".jsonl.gz"); }

bool has_visible_text(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return !std::isspace(static_cast<unsigned char>(c)); });
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A file opened for reading, decompressed through gzip when its name ends in .gz.
class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path), gzip_(is_gzip(path)) {
    std::FILE* probe = std::fopen(path.c_str(), "rb");
    if (!probe) fail("{}: cannot open: {}", path, std::strerror(errno));
    if (!gzip_) {
      f_ = probe;
      return;
    }
    std::fclose(probe);
    f_ = ::popen(("gzip -dc -- " + shell_quote(path) + " 2>/dev/null").c_str(), "r");
    if (!f_) fail("{}: cannot start gzip to decompress it", path);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() {
    if (f_) gzip_ ? ::pclose(f_) : std::fclose(f_);
    std::free(line_);
  }

  // The next line without its '\n'; false at the end.
  bool getline(std::string& out) {
    const ssize_t n = ::getline(&line_, &cap_, f_);
    if (n < 0) {
      check_read();
      return false;
    }
    out.assign(line_, static_cast<size_t>(n));
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return true;
  }

  std::string read_all() {
    std::string out;
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f_)) > 0) out.append(buf, n);
    check_read();
    return out;
  }

  // Checks the end of the input: a read error, or gzip reporting a corrupt file.
  void finish() {
    if (!gzip_ || !f_) return;
    const int status = ::pclose(f_);
    f_ = nullptr;
    if (status != 0) fail("{}: gzip could not decompress it (corrupt or not gzip data)", path_);
  }

 private:
  void check_read() {
    if (std::ferror(f_)) fail("{}: read error", path_);
  }

  std::string path_;
  bool gzip_;
  std::FILE* f_ = nullptr;
  char* line_ = nullptr;
  size_t cap_ = 0;
};

// A plain file below a directory input is taken when its start looks like UTF-8 text; a .gz file
// when its inner name does.
bool looks_like_text(const fs::path& p) {
  const std::string name = p.filename().string();
  if (name.empty() || name[0] == '.') return false;
  if (is_jsonl(name)) return true;
  if (is_gzip(name)) {
    const std::string inner = fs::path(name).stem().extension().string();
    static const char* const kText[] = {"", ".txt", ".text", ".md", ".rst", ".pod", ".tex", ".org", ".adoc"};
    return std::find(std::begin(kText), std::end(kText), inner) != std::end(kText);
  }
  std::FILE* f = std::fopen(p.c_str(), "rb");
  if (!f) fail("{}: cannot open: {}", p.string(), std::strerror(errno));
  char buf[8192];
  const size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  const std::string_view head(buf, n);
  if (head.find('\0') != std::string_view::npos) return false;
  return utf8::is_valid(head.substr(0, utf8::complete_prefix(head)));
}

struct Reader {
  const CorpusOptions& opt;
  const std::function<void(RawDocument&&)>& emit;
  size_t input = 0;

  void jsonl_file(const std::string& path) {
    InputFile in(path);
    std::string line;
    for (int64_t no = 1; in.getline(line); ++no) {
      if (!has_visible_text(line)) continue;
      RawDocument doc;
      doc.input = input;
      doc.source = fmt::format("{}:{}", path, no);
      parse_jsonl_document(line, doc.source, doc);
      if (doc.is_chat() || has_visible_text(doc.text)) emit(std::move(doc));
    }
    in.finish();
  }

  void text_file(const std::string& path) {
    InputFile in(path);
    std::string text = in.read_all();
    in.finish();
    if (!opt.split_paragraphs) {
      if (has_visible_text(text)) emit({input, path, std::move(text), {}});
      return;
    }
    for (std::string& block : split_paragraphs(text)) emit({input, path, std::move(block), {}});
  }

  void file(const std::string& path) { is_jsonl(path) ? jsonl_file(path) : text_file(path); }
};

}  // namespace

void parse_jsonl_document(const std::string& line, const std::string& source, RawDocument& doc) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed JSON: {}", source, e.what());
  }
  if (!j.is_object()) fail("{}: a JSONL line must be an object with \"text\" or \"messages\"", source);
  if (auto m = j.find("messages"); m != j.end()) {
    if (!m->is_array() || m->empty()) fail("{}: \"messages\" must be a non-empty list", source);
    for (size_t i = 0; i < m->size(); ++i) {
      const auto& msg = (*m)[i];
      const auto role = msg.is_object() ? msg.find("role") : msg.end();
      const auto content = msg.is_object() ? msg.find("content") : msg.end();
      if (!msg.is_object() || role == msg.end() || !role->is_string() || content == msg.end() ||
          !content->is_string())
        fail("{}: message {} must be an object with string \"role\" and \"content\"", source, i);
      doc.messages.push_back({role->get<std::string>(), content->get<std::string>()});
    }
    return;
  }
  const auto text = j.find("text");
  if (text == j.end()) fail("{}: the object has neither a \"text\" nor a \"messages\" field", source);
  if (!text->is_string()) fail("{}: \"text\" must be a string", source);
  doc.text = text->get<std::string>();
}

std::vector<std::string> split_paragraphs(const std::string& text) {
  std::vector<std::string> blocks;
  std::string block;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string::npos ? text.size() : nl + 1;
    const std::string_view line(text.data() + pos, end - pos);
    if (has_visible_text(std::string(line))) {
      block.append(line);
    } else if (!block.empty()) {
      if (block.back() == '\n') block.pop_back();
      blocks.push_back(std::move(block));
      block.clear();
    }
    pos = end;
  }
  if (!block.empty()) {
    if (block.back() == '\n') block.pop_back();
    blocks.push_back(std::move(block));
  }
  return blocks;
}

void read_corpus(const std::vector<std::string>& inputs, const CorpusOptions& opt,
                 const std::function<void(RawDocument&&)>& emit, std::vector<DataInput>& inputs_out) {
  inputs_out.clear();
  Reader r{opt, emit};
  for (r.input = 0; r.input < inputs.size(); ++r.input) {
    const std::string& path = inputs[r.input];
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) fail("{}: no such file or directory", path);
    DataInput info{path, is_jsonl(path) ? "jsonl" : "text", 1, 0, 0};
    if (fs::is_directory(status)) {
      std::vector<fs::path> files;
      for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (it->is_directory() && !name.empty() && name[0] == '.') it.disable_recursion_pending();
        if (it->is_regular_file() && looks_like_text(it->path())) files.push_back(it->path());
      }
      if (ec) fail("{}: cannot list the directory: {}", path, ec.message());
      std::sort(files.begin(), files.end());
      info.kind = "directory";
      info.n_files = static_cast<int64_t>(files.size());
      inputs_out.push_back(info);
      for (const fs::path& f : files) r.file(f.string());
    } else {
      inputs_out.push_back(info);
      r.file(path);
    }
  }
}

}  // namespace arwkv
