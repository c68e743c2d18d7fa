#include "artifact_check.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "sha256.h"
#include "sysinfo.h"

namespace edgebit::engine {
namespace {

constexpr const char* kStampHeader = "edgebit-verified 1";

// What a stamp remembers of a file besides its hash: any write, replacement or new copy changes one of these.
struct Seen {
    std::string sha256;
    unsigned long long dev = 0, ino = 0, size = 0;
    long long mtime_s = 0, mtime_ns = 0, ctime_s = 0, ctime_ns = 0;

    bool same_file(const Seen& o) const {
        return dev == o.dev && ino == o.ino && size == o.size && mtime_s == o.mtime_s && mtime_ns == o.mtime_ns &&
               ctime_s == o.ctime_s && ctime_ns == o.ctime_ns;
    }
};

Seen seen_of(const struct stat& st) {
    Seen s;
    s.dev = st.st_dev;
    s.ino = st.st_ino;
    s.size = static_cast<unsigned long long>(st.st_size);
    s.mtime_s = st.st_mtim.tv_sec;
    s.mtime_ns = st.st_mtim.tv_nsec;
    s.ctime_s = st.st_ctim.tv_sec;
    s.ctime_ns = st.st_ctim.tv_nsec;
    return s;
}

// The stamp for this artifact directory (by its real path, so two paths to one dir share it), "" if no cache.
std::string stamp_path(const std::string& dir, std::string* real_dir) {
    char buf[PATH_MAX];
    if (!realpath(dir.c_str(), buf)) return "";
    *real_dir = buf;
    const std::string root = cache_root();
    if (root.empty()) return "";
    Sha256 h;
    h.update(real_dir->data(), real_dir->size());
    return root + "/verified/" + h.hex_digest().substr(0, 32) + ".stamp";
}

// name -> what was seen; an unreadable or foreign stamp is an empty one (everything is hashed again).
std::map<std::string, Seen> read_stamp(const std::string& path, const std::string& real_dir) {
    std::map<std::string, Seen> out;
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line) || line != std::string(kStampHeader) + " " + real_dir) return out;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        Seen s;
        std::string name;
        if (!(ls >> s.sha256 >> s.dev >> s.ino >> s.size >> s.mtime_s >> s.mtime_ns >> s.ctime_s >> s.ctime_ns)) continue;
        ls.get();  // the one space before the name (names may hold spaces)
        std::getline(ls, name);
        if (!name.empty()) out[name] = s;
    }
    return out;
}

// Stamps of artifact directories that no longer exist (exports deleted, test dirs) are removed whenever a stamp is
// written, so the cache holds one small file per live artifact.
void prune_stamps(const std::string& verified) {
    DIR* d = opendir(verified.c_str());
    if (!d) return;
    const std::string header = std::string(kStampHeader) + " ";
    while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name.size() < 6 || name.compare(name.size() - 6, 6, ".stamp") != 0) continue;
        const std::string path = verified + "/" + name;
        std::ifstream in(path);
        std::string line;
        struct stat st;
        if (std::getline(in, line) && line.compare(0, header.size(), header) == 0 &&
            stat(line.c_str() + header.size(), &st) != 0 && errno == ENOENT)
            std::remove(path.c_str());
    }
    closedir(d);
}

// Written to a temporary file and renamed into place: a concurrent open reads the old stamp or the new one. A
// failure (read-only or full disk) only means the next open hashes again.
void write_stamp(const std::string& path, const std::string& real_dir, const std::map<std::string, Seen>& seen) {
    const size_t slash = path.rfind('/');
    const std::string verified = path.substr(0, slash), root = verified.substr(0, verified.rfind('/'));
    mkdir(root.c_str(), 0755);
    mkdir(verified.c_str(), 0700);
    const std::string tmp = path + ".tmp-" + std::to_string(getpid());
    FILE* f = std::fopen(tmp.c_str(), "w");
    if (!f) return;
    bool ok = std::fprintf(f, "%s %s\n", kStampHeader, real_dir.c_str()) > 0;
    for (const auto& kv : seen) {
        const Seen& s = kv.second;
        ok = ok && std::fprintf(f, "%s %llu %llu %llu %lld %lld %lld %lld %s\n", s.sha256.c_str(), s.dev, s.ino, s.size,
                                s.mtime_s, s.mtime_ns, s.ctime_s, s.ctime_ns, kv.first.c_str()) > 0;
    }
    ok = std::fclose(f) == 0 && ok;
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
    prune_stamps(verified);
}

}  // namespace

std::string cache_root() {
    const char* v = getenv("EDGEBIT_CACHE_DIR");
    if (v && *v) return v;
    v = getenv("XDG_CACHE_HOME");
    if (v && *v) return std::string(v) + "/edgebit";
    v = getenv("HOME");
    if (v && *v) return std::string(v) + "/.cache/edgebit";
    return "";
}

VerifyReport check_artifact_files(const std::string& dir, const Manifest& m, Verify mode) {
    VerifyReport r;
    r.mode = mode;
    r.files = static_cast<int>(m.files.size());
    const double t0 = now_ms();
    std::string real_dir;
    const std::string stamp = mode == Verify::Off ? "" : stamp_path(dir, &real_dir);
    const std::map<std::string, Seen> before =
        mode == Verify::Cached && !stamp.empty() ? read_stamp(stamp, real_dir) : std::map<std::string, Seen>();
    std::map<std::string, Seen> after;
    for (const auto& file : m.files) {
        const std::string& name = file.first;
        const std::string path = dir + "/" + name;
        struct stat st;
        if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
            const bool library = name == m.op_library;
            throw std::runtime_error(path + ": listed in manifest.json but missing" +
                                     std::string(library ? " (the model's edgebit ops need this op library)" : "") +
                                     ": copy the artifact again (edgebit profile pushes it again), or re-export");
        }
        if (mode == Verify::Off) continue;
        Seen now = seen_of(st);
        now.sha256 = file.second;
        const auto it = before.find(name);
        if (it != before.end() && it->second.sha256 == file.second && it->second.same_file(now)) {
            after[name] = now;
            continue;
        }
        const std::string got = sha256_file(path);
        ++r.hashed;
        r.hashed_bytes += static_cast<int64_t>(st.st_size);
        if (got != file.second)
            throw std::runtime_error(path + ": contents differ from the sha256 in manifest.json (" +
                                     std::to_string(static_cast<long long>(st.st_size)) +
                                     " bytes; changed, truncated or replaced after export): re-export the model, or "
                                     "copy the artifact again");
        after[name] = now;
    }
    if (!stamp.empty() && r.hashed > 0) write_stamp(stamp, real_dir, after);
    r.stamp = stamp;
    r.ms = now_ms() - t0;
    return r;
}

}  // namespace edgebit::engine
