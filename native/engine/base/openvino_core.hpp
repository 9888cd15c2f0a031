#pragma once
// Process-wide OpenVINO state: one ov::Core shared by every model, and the tokenizers extension.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <openvino/openvino.hpp>

namespace ovd {

// Device-independent compile properties as the user gives them (values as strings, parsed by OpenVINO).
using PropertyMap = std::map<std::string, std::string>;

ov::Core& shared_core();

// Durations in the engine's metrics and logs: milliseconds on the steady clock.
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point start);
ov::AnyMap to_any_map(const PropertyMap& properties);

std::string openvino_version();
std::vector<std::string> available_devices();

// Registers libopenvino_tokenizers.so with the shared core (once; later calls with the same path are no-ops).
void load_tokenizers_extension(const std::string& library_path);
bool tokenizers_extension_loaded();

}  // namespace ovd
