#include "weight_map.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "artifact_check.h"
#include "memory.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL and the pages are touched instead
#endif

namespace edgebit::engine {
namespace {

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// Where a failed re-read is remembered: "this kernel did not give this filesystem's files 2 MB folios" (file THP
// needs a filesystem with large folios: ext4 since Linux 6.16, XFS since 5.18...), so that later opens do not drop
// and re-read a file for nothing. "" (no cache directory): never re-read.
std::string no_file_thp_marker(dev_t dev) {
    const std::string root = cache_root();
    struct utsname u;
    if (root.empty() || uname(&u) != 0) return "";
    char name[64];
    std::snprintf(name, sizeof name, "/no-file-thp-%llx-", static_cast<unsigned long long>(dev));
    // The machine too: an emulated aarch64 run (qemu-user) on the same filesystem sees no 2 MB pages of its own.
    std::string release = std::string(u.release) + "-" + u.machine;
    for (char& c : release)
        if (c == '/') c = '_';
    return root + "/hugepages" + name + release;
}

}  // namespace

size_t hugepage_bytes() {
    const char* env = std::getenv("EDGEBIT_HUGEPAGES");
    if (env && std::strcmp(env, "0") == 0) return 0;
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string mode;
    std::getline(f, mode);
    if (mode.find("[always]") == std::string::npos && mode.find("[madvise]") == std::string::npos) return 0;
    // The PMD size: 2 MB with 4 KB base pages, 32 MB with 16 KB ones (some arm64 kernels, Raspberry Pi 5's).
    std::ifstream p("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size");
    unsigned long long bytes = 0;
    if (!(p >> bytes) || bytes < 4096 || (bytes & (bytes - 1)) != 0) return 0;
    return static_cast<size_t>(bytes);
}

bool hugepages_wanted() { return hugepage_bytes() != 0; }

void WeightMap::map_file(int fd) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t len = (size_ + page - 1) / page * page;
    const size_t align = huge_ > page ? huge_ : page;
    // Reserve one huge page more than the file, map the file at the first huge-page boundary inside (file offset 0
    // there, so every huge page's worth of the file can be one page), and return the slack on either side.
    void* r = mmap(nullptr, len + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) throw std::runtime_error(sys_error(path_ + ": cannot reserve address space to map it"));
    const uintptr_t base = reinterpret_cast<uintptr_t>(r);
    const uintptr_t at = (base + align - 1) & ~(uintptr_t(align) - 1);
    // PROT_WRITE as ONNX Runtime maps its own (MAP_PRIVATE: a write would copy one page, never reach the file).
    void* p = mmap(reinterpret_cast<void*>(at), size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        munmap(r, len + align);
        throw std::runtime_error(sys_error(path_ + ": cannot map it"));
    }
    if (at > base) munmap(r, at - base);
    if (base + len + align > at + len) munmap(reinterpret_cast<void*>(at + len), base + len + align - (at + len));
    data_ = static_cast<uint8_t*>(p);
    if (huge_ && madvise(data_, size_, MADV_HUGEPAGE) != 0) huge_ = 0;
}

// Faults in up to four huge-page pieces spread over the file and sees whether they landed on huge pages, then lets
// them go again (MADV_DONTNEED on a private file mapping only unmaps), so the runtime's own reads decide what is
// resident, as before (a runtime that repacks a weight at load reads it once, and the engine releases it after:
// memory.h).
bool WeightMap::cached_small(size_t chunks) {
    const size_t n = chunks < 4 ? chunks : 4;
    auto piece = [&](size_t i) { return data_ + (chunks * (2 * i + 1) / (2 * n)) * huge_; };  // middles of n slices
    for (size_t i = 0; i < n; ++i) {
        uint8_t* p = piece(i);
        if (madvise(p, huge_, MADV_POPULATE_READ) != 0) {  // Linux < 5.14: touch the pages instead
            volatile uint8_t sink = 0;
            for (size_t k = 0; k < huge_; k += 4096) sink = sink + p[k];
        }
    }
    const bool small = memory_split({path_}).weights_huge < static_cast<int64_t>(n * huge_ / 2);
    for (size_t i = 0; i < n; ++i) madvise(piece(i), huge_, MADV_DONTNEED);
    return small;
}

void WeightMap::unmap() {
    if (data_) munmap(data_, size_);
    data_ = nullptr;
}

WeightMap::WeightMap(const std::string& path) {
    char real[PATH_MAX];
    path_ = realpath(path.c_str(), real) ? std::string(real) : path;
    const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(sys_error(path_ + ": cannot open the weight file"));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        close(fd);
        throw std::runtime_error(path_ + ": not a non-empty regular file (a weight file was expected)");
    }
    size_ = static_cast<size_t>(st.st_size);
    huge_ = hugepage_bytes();
    try {
        map_file(fd);
        const size_t chunks = huge_ ? size_ / huge_ : 0;  // the pieces that can each be one page
        const std::string marker = chunks ? no_file_thp_marker(st.st_dev) : "";
        if (!marker.empty() && access(marker.c_str(), F_OK) != 0 && cached_small(chunks)) {
            // Cached in small folios: drop the file's cached pages so that faults through this mapping read it
            // again, in huge folios where the filesystem has them. Only clean pages can go (a file just exported
            // may not be written back yet: write it back first), and pages other processes map stay.
            unmap();
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            map_file(fd);
            if (huge_ && cached_small(chunks)) {  // this filesystem has none: remember, do not re-read again
                mkdir(cache_root().c_str(), 0755);
                mkdir(marker.substr(0, marker.rfind('/')).c_str(), 0755);
                if (FILE* f = std::fopen(marker.c_str(), "w")) std::fclose(f);
            }
        }
    } catch (...) {
        close(fd);
        throw;
    }
    close(fd);  // the mapping keeps the file
}

WeightMap::~WeightMap() { unmap(); }

}  // namespace edgebit::engine
