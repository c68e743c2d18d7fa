#include "sysinfo.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace edgebit::engine {

double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

int64_t proc_status_bytes(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const size_t n = std::strlen(key);
    while (std::getline(in, line)) {
        if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') {
            long long kb = 0;
            if (std::sscanf(line.c_str() + n + 1, "%lld", &kb) == 1) return kb * 1024;
        }
    }
    return -1;
}

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line, implementer, part;
    auto value = [](const std::string& l) {
        size_t c = l.find(':');
        std::string v = c == std::string::npos ? "" : l.substr(c + 1);
        size_t b = v.find_first_not_of(" \t");
        return b == std::string::npos ? std::string() : v.substr(b);
    };
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0 || line.rfind("Hardware", 0) == 0) return value(line);
        if (line.rfind("CPU implementer", 0) == 0 && implementer.empty()) implementer = value(line);
        if (line.rfind("CPU part", 0) == 0 && part.empty()) part = value(line);
    }
    if (!implementer.empty()) return "implementer " + implementer + " part " + part;
    return "";
}

std::string machine_arch() {
    struct utsname u;
    return uname(&u) == 0 ? u.machine : "";
}

int online_cpus() { return static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)); }

int64_t dir_bytes(const std::string& dir) {
    int64_t total = 0;
    DIR* d = opendir(dir.c_str());
    if (!d) return -1;
    while (dirent* e = readdir(d)) {
        struct stat st;
        std::string p = dir + "/" + e->d_name;
        if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += st.st_size;
    }
    closedir(d);
    return total;
}

bool is_file(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace edgebit::engine
