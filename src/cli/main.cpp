// arwkv: the command-line program. Each subcommand lives in its own file and registers here; user
// errors (arwkv::Error) end the program with a message and exit status 1.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "core/error.h"
#include "core/finite.h"
#include "dist/comm.h"
#include "model/teacher/teacher.h"

int main(int argc, char** argv) {
  CLI::App app{"arwkv: turn a Transformer LLM into an RWKV-7 RNN and run it"};
  app.require_subcommand(1);
  app.fallthrough();  // options of the program (--allow-nonfinite) may also follow the subcommand
  app.add_flag_callback("--allow-nonfinite", [] { arwkv::set_allow_nonfinite(true); },
                        "load model files whose weights hold NaN or infinite values (with a warning) instead of "
                        "refusing them");
  app.add_flag_callback("--f32-weights", [] { arwkv::set_compact_weights_default(false); },
                        "hold a teacher's weights as fp32 copies instead of as the file stores them (bf16, f16, "
                        "GGUF quantisation blocks, read directly by the matrix products)");
  arwkv::cli::add_info(app);
  arwkv::cli::add_generate(app);
  arwkv::cli::add_chat(app);
  arwkv::cli::add_eval(app);
  arwkv::cli::add_convert(app);
  arwkv::cli::add_data(app);
  arwkv::cli::add_chatgen(app);
  arwkv::cli::add_pairs(app);
  arwkv::cli::add_distill(app);
  arwkv::cli::add_serve(app);
  arwkv::cli::add_export(app);
  arwkv::cli::add_plan(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const arwkv::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "arwkv: error: %s%s\n", arwkv::rank_prefix().c_str(), e.what());
    // One rank of a data-parallel run cannot go on: the whole run ends (the others may be waiting
    // for it in a collective).
    if (arwkv::world().distributed()) arwkv::world().abort(1);
    return 1;
  }
  return 0;
}
