// The artifact's files checked against manifest.json before any runtime loads them (what `edgebit verify/run/
// profile` do in Python, edgebit/artifact.py): every listed file present and, unless turned off, with the sha256
// it was exported with. A device copy damaged after the push, a truncated transfer or a swapped model or op
// library then fails here in one line naming the file, not inside ONNX Runtime's or ExecuTorch's loader.
//
// Hashing costs one read of the artifact (0.65 s for an 865 MB model with SHA-NI, 3 s without; docs/engine.md),
// so a verified file is remembered in a stamp: <cache>/verified/<hash of the artifact's real path>.stamp holds,
// per file, the sha256 and the (device, inode, size, mtime, ctime) it had when hashed. The next open hashes only
// files whose stat differs (written, replaced, copied again); ctime cannot be set back by a program, so an edit
// always shows. <cache> is $EDGEBIT_CACHE_DIR, else $XDG_CACHE_HOME/edgebit, else $HOME/.cache/edgebit (the
// Python package's cache); with none of them, or an unwritable one, every open hashes.
#pragma once
#include <cstdint>
#include <string>

#include "manifest.h"

namespace edgebit::engine {

enum class Verify {
    Cached,  // hash files whose stat changed since their last successful check (the default)
    Full,    // hash every file at every open (and refresh the stamp)
    Off,     // presence only (layout, format and the op library's ELF header are still checked)
};

struct VerifyReport {
    Verify mode = Verify::Cached;
    int files = 0;           // listed in manifest.json
    int hashed = 0;          // hashed by this open
    int64_t hashed_bytes = 0;
    double ms = 0;           // time spent checking
    std::string stamp;       // the stamp file used, "" when there is none
};

// The engine's cache directory: $EDGEBIT_CACHE_DIR, else $XDG_CACHE_HOME/edgebit, else $HOME/.cache/edgebit; ""
// when none is set.
std::string cache_root();

// Throws std::runtime_error with one line naming the file and what to do.
VerifyReport check_artifact_files(const std::string& dir, const Manifest& m, Verify mode);

}  // namespace edgebit::engine
