// What the subcommands share in reading their arguments: whole-number flags,
// and tensor files bound to a model's inputs and outputs ("x.npy" in the
// model's order, "name=x.npy" by name).
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "engine/interpreter.h"

namespace huddle::tools {

// Reads `value` (the argument after `flag`, null if there is none) as a whole
// number from `lo` to `hi` into *out. Otherwise prints "huddle COMMAND: FLAG
// needs a whole number from LO to HI" and returns false (a usage error).
bool parse_count(const char* command, const char* flag, const char* value, long lo, long hi, long* out);

// Which of `names` each binding names, with the binding's path: by name
// ("name=path"), or in order for unnamed ones. Throws std::runtime_error for a
// name the model lacks or more unnamed bindings than names; `what` ("input",
// "output") names the kind in the message.
std::vector<std::pair<size_t, std::string>> resolve_bindings(const std::vector<std::string>& bindings,
                                                             const std::vector<std::string>& names,
                                                             const char* what);

// The names of the interpreter's inputs, in order.
std::vector<std::string> input_names(const engine::Interpreter& it);
// The names of the interpreter's outputs, in order.
std::vector<std::string> output_names(const engine::Interpreter& it);

// `text` as a JSON string literal (quotes, backslashes and control characters escaped).
std::string json_string(const std::string& text);

// Reads the .npy file at `path` into input `index`. Throws (engine::NpyError,
// std::runtime_error) if it cannot be read or its dtype or shape is not the input's.
void read_input(engine::Interpreter& it, size_t index, const std::string& path);

}  // namespace huddle::tools
