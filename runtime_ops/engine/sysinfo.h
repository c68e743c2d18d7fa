// What the runner reports about the machine and process: clock, memory (VmRSS / VmHWM), CPU.
#pragma once
#include <cstdint>
#include <string>

namespace edgebit::engine {

double now_ms();                        // monotonic clock
int64_t proc_status_bytes(const char* key);  // "VmRSS" / "VmHWM" from /proc/self/status; -1 if unknown
std::string cpu_model();                // /proc/cpuinfo's model name (or CPU implementer/part), "" if none
std::string machine_arch();             // uname -m
int online_cpus();
int64_t dir_bytes(const std::string& dir);
bool is_file(const std::string& path);     // a regular file (after symlinks)  // sum of regular files' sizes directly in dir

}  // namespace edgebit::engine
