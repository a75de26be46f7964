// The subcommands of the arwkv program; each adds itself to the app and runs from its callback.
#pragma once

#include <CLI/CLI.hpp>

namespace arwkv {
struct SamplerOptions;
}

namespace arwkv::cli {

void add_info(CLI::App& app);
void add_generate(CLI::App& app);
void add_chat(CLI::App& app);
void add_eval(CLI::App& app);
void add_convert(CLI::App& app);
void add_data(CLI::App& app);
void add_chatgen(CLI::App& app);
void add_pairs(CLI::App& app);
void add_distill(CLI::App& app);
void add_serve(CLI::App& app);
void add_export(CLI::App& app);
void add_plan(CLI::App& app);

// --repeat-penalty, --presence-penalty, --frequency-penalty and --repeat-last-n (generate, chat, chatgen).
void add_penalty_options(CLI::App* cmd, SamplerOptions& s);

}  // namespace arwkv::cli
