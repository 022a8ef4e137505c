// What the subcommands share in reading their arguments: whole-number flags,
// and tensor files bound to a model's inputs and outputs ("x.npy" in the
// model's order, "name=x.npy" by name); an image (PNG, JPEG) may stand for a
// tensor wherever a .npy file may.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "engine/interpreter.h"
#include "engine/model_file.h"
#include "engine/npy.h"

namespace huddle::tools {

// Reads `value` (the argument after `flag`, null if there is none) as a whole
// number from `lo` to `hi` into *out. Otherwise prints "huddle COMMAND: FLAG
// needs a whole number from LO to HI" and returns false (a usage error).
bool parse_count(const char* command, const char* flag, const char* value, long lo, long hi, long* out);

// Reads `value` (as parse_count) as a number from 0 to 1 into *out. Otherwise
// prints "huddle COMMAND: FLAG needs a number from 0 to 1" and returns false.
bool parse_fraction(const char* command, const char* flag, const char* value, float* out);

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

// The tensor for the input `name` (`dtype`, `shape`) from the file at `path`:
// a PNG or JPEG (told by its magic bytes) preprocessed as the model file
// `model` stores (an f32 input only), otherwise a .npy file whose dtype and
// shape must be the input's. Throws (node::ImageError, engine::NpyError,
// std::runtime_error) naming the file and the problem.
engine::NpyArray read_input_tensor(const std::string& path, const std::string& name, engine::DType dtype,
                                   const engine::Shape& shape, const engine::ModelFile& model);

// Reads the file at `path` (read_input_tensor) into input `index`.
void read_input(engine::Interpreter& it, size_t index, const std::string& path, const engine::ModelFile& model);

}  // namespace huddle::tools
