#include "elf_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace edgebit::engine {
namespace {

// e_machine of the target this engine is compiled for: a library for any other machine cannot load here.
#if defined(__x86_64__)
constexpr unsigned kOwnMachine = 62;  // EM_X86_64
#elif defined(__aarch64__)
constexpr unsigned kOwnMachine = 183;  // EM_AARCH64
#else
constexpr unsigned kOwnMachine = 0;  // unknown: the machine is not checked
#endif

uint16_t le16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24; }
uint64_t le64(const uint8_t* p) { return uint64_t(le32(p)) | uint64_t(le32(p + 4)) << 32; }

bool read_at(int fd, void* buf, size_t n, off_t offset) {
    uint8_t* p = static_cast<uint8_t*>(buf);
    while (n > 0) {
        const ssize_t got = pread(fd, p, n, offset);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return false;
        p += got;
        n -= static_cast<size_t>(got);
        offset += got;
    }
    return true;
}

}  // namespace

std::string elf_machine_name(unsigned machine) {
    switch (machine) {
        case 3: return "x86";
        case 40: return "arm";
        case 62: return "x86_64";
        case 183: return "aarch64";
        case 243: return "riscv";
        default: return "ELF machine " + std::to_string(machine);
    }
}

void check_loadable(const std::string& path, const std::string& what) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path + ": cannot read the " + what + " (" + std::strerror(errno) + ")");
    struct stat st;
    uint8_t h[64];
    const bool have_header = fstat(fd, &st) == 0 && read_at(fd, h, sizeof h, 0);
    if (!have_header || std::memcmp(h, "\x7f" "ELF", 4) != 0) {
        ::close(fd);
        throw std::runtime_error(path + ": not a shared library (no ELF header; truncated or not a build of the " +
                                 what + ")");
    }
    const int bits = h[4] == 1 ? 32 : h[4] == 2 ? 64 : 0;
    const bool little = h[5] == 1;
    const unsigned machine = little ? le16(h + 18) : unsigned(h[18] << 8 | h[19]);
    if (kOwnMachine != 0 && (machine != kOwnMachine || bits != 64 || !little)) {
        ::close(fd);
        throw std::runtime_error(path + ": " + what + " built for " + elf_machine_name(machine) + " (" +
                                 std::to_string(bits) + "-bit" + (little ? "" : ", big-endian") + "), this engine is " +
                                 elf_machine_name(kOwnMachine) + ": it cannot load here; use the " + what +
                                 " built for this machine (a bundle's lib/: edgebit bundle --target) or re-export here");
    }
    // Every PT_LOAD segment must lie inside the file (a truncated copy maps pages past its end: SIGBUS).
    const uint64_t phoff = le64(h + 0x20);
    const unsigned phentsize = le16(h + 0x36), phnum = le16(h + 0x38);
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    bool truncated = false;
    if (bits == 64 && little && phentsize >= 56 && phnum <= 1024) {
        std::vector<uint8_t> table(size_t(phentsize) * phnum);
        if (phoff > size || table.size() > size - phoff || !read_at(fd, table.data(), table.size(), off_t(phoff))) {
            truncated = true;  // the program header table itself is cut off
        } else {
            for (unsigned i = 0; i < phnum && !truncated; ++i) {
                const uint8_t* ph = table.data() + size_t(i) * phentsize;
                const uint64_t offset = le64(ph + 8), filesz = le64(ph + 32);
                truncated = le32(ph) == 1 /* PT_LOAD */ && (offset > size || filesz > size - offset);
            }
        }
    }
    ::close(fd);
    if (truncated)
        throw std::runtime_error(path + ": " + what + " is truncated (" + std::to_string(size) +
                                 " bytes; its segments extend past the end): re-export, or copy it again");
}

}  // namespace edgebit::engine
