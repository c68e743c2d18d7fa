// A weight file mapped for the runtimes to read in place, on 2 MB pages where the kernel allows it.
//
// Why: a decoded token reads every weight once (0.7 GB for 2B4T), and with 4 KB pages that is ~170 000 TLB misses
// a token, each a page walk that a VM makes two-dimensional. On the 2B4T shape (Zen 4 VM) the decode GEMVs ran
// 15-25% faster over 2 MB pages than over 4 KB ones (docs/performance.md, fifteenth run). ONNX Runtime and
// ExecuTorch map their weights themselves in 4 KB pieces at offsets that cannot be 2 MB-aligned, so the engine maps
// the file once, at an address congruent to its offset modulo 2 MB, with MADV_HUGEPAGE, and hands the runtimes
// pointers into it (decoder_ort.cpp: AddInitializer per external tensor; decoder_et.cpp: a BufferDataLoader).
//
// The mapping is file-backed (the page cache's pages, as before: nothing is copied, the memory figures count it as
// mapped weights, the kernel can drop it under pressure). A 2 MB page needs the page cache to hold the file in 2 MB
// folios; a file cached in small folios (read earlier through 4 KB mappings) is dropped from the cache once
// (POSIX_FADV_DONTNEED) and faulted back through this mapping, which reads it in 2 MB folios where the filesystem
// supports large folios (where it does not, a marker in the engine's cache directory stops later re-reads). Only artifacts whose
// linears are edgebit's ops use it (their kernels read the mapped weights every token); where transparent huge pages
// are off, or EDGEBIT_HUGEPAGES=0, the runtimes map the files themselves, as before.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace edgebit::engine {

class WeightMap {
  public:
    explicit WeightMap(const std::string& path);  // throws std::runtime_error naming the file
    ~WeightMap();
    WeightMap(const WeightMap&) = delete;
    WeightMap& operator=(const WeightMap&) = delete;

    uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }

  private:
    void map_file(int fd);
    bool cached_small(size_t chunks);
    void unmap();
    std::string path_;
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
    size_t huge_ = 0;  // the huge page size advised, 0 = none
};

// The size of a transparent huge page (the PMD size: 2 MB with 4 KB base pages) when the kernel gives them to a
// mapping that asks (its setting is "always" or "madvise") and EDGEBIT_HUGEPAGES=0 is not set; else 0.
size_t hugepage_bytes();
bool hugepages_wanted();  // hugepage_bytes() != 0

}  // namespace edgebit::engine
