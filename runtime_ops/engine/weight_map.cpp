#include "weight_map.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "memory.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14; older kernels answer EINVAL and the pages are touched instead
#endif

namespace edgebit::engine {
namespace {

constexpr size_t kHuge = size_t(2) << 20;

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

bool hugepages_wanted() {
    const char* env = std::getenv("EDGEBIT_HUGEPAGES");
    if (env && std::strcmp(env, "0") == 0) return false;
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string s;
    std::getline(f, s);
    return s.find("[always]") != std::string::npos || s.find("[madvise]") != std::string::npos;
}

void WeightMap::map_file(int fd) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t len = (size_ + page - 1) / page * page;
    // Reserve 2 MB more than the file, map the file at the first 2 MB boundary inside (file offset 0 there, so every
    // 2 MB of the file can be one page), and return the slack on either side.
    void* r = mmap(nullptr, len + kHuge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r == MAP_FAILED) throw std::runtime_error(sys_error(path_ + ": cannot reserve address space to map it"));
    const uintptr_t base = reinterpret_cast<uintptr_t>(r);
    const uintptr_t at = (base + kHuge - 1) & ~(uintptr_t(kHuge) - 1);
    // PROT_WRITE as ONNX Runtime maps its own (MAP_PRIVATE: a write would copy one page, never reach the file).
    void* p = mmap(reinterpret_cast<void*>(at), size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        munmap(r, len + kHuge);
        throw std::runtime_error(sys_error(path_ + ": cannot map it"));
    }
    if (at > base) munmap(r, at - base);
    if (base + len + kHuge > at + len) munmap(reinterpret_cast<void*>(at + len), base + len + kHuge - (at + len));
    data_ = static_cast<uint8_t*>(p);
    huge_ = hugepages_wanted() && madvise(data_, size_, MADV_HUGEPAGE) == 0;
}

// Faults in up to four 2 MB pieces spread over the file and sees whether they landed on 2 MB pages, then lets them
// go again (MADV_DONTNEED on a private file mapping only unmaps), so the runtime's own reads decide what is resident,
// as before (a runtime that repacks a weight at load reads it once, and the engine releases it after: memory.h).
bool WeightMap::cached_small(size_t chunks) {
    const size_t n = chunks < 4 ? chunks : 4;
    for (size_t i = 0; i < n; ++i) {
        uint8_t* p = data_ + (chunks * (2 * i + 1) / (2 * n)) * kHuge;
        if (madvise(p, kHuge, MADV_POPULATE_READ) != 0) {  // Linux < 5.14: touch the pages instead
            volatile uint8_t sink = 0;
            for (size_t k = 0; k < kHuge; k += 4096) sink = sink + p[k];
        }
    }
    const bool small = memory_split({path_}).weights_huge < static_cast<int64_t>(n * kHuge / 2);
    for (size_t i = 0; i < n; ++i) madvise(data_ + (chunks * (2 * i + 1) / (2 * n)) * kHuge, kHuge, MADV_DONTNEED);
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
    try {
        map_file(fd);
        const size_t chunks = size_ / kHuge;  // the 2 MB pieces that can each be one page
        if (huge_ && chunks > 0 && cached_small(chunks)) {
            // Cached in small folios: drop the file's clean cached pages (pages other processes map stay) so that
            // faults through this mapping read it again, in 2 MB folios.
            unmap();
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            map_file(fd);
        }
    } catch (...) {
        close(fd);
        throw;
    }
    close(fd);  // the mapping keeps the file
}

WeightMap::~WeightMap() { unmap(); }

}  // namespace edgebit::engine
