// The op library is inspected before dlopen / RegisterCustomOpsLibrary (as edgebit/ops/libpath.py does for the
// Python commands): their own errors for a foreign or damaged file are "wrong ELF class" at best, and a truncated
// library passes dlopen's header checks and then dies with SIGBUS touching a page past the end of the file.
#pragma once
#include <string>

namespace edgebit::engine {

// Throws std::runtime_error naming path when it is not a 64-bit little-endian ELF file for the machine this
// engine was built for ("built for aarch64 (64-bit), this engine is x86_64"), or a loadable segment lies past
// the end of the file (truncated). `what` names the file's role in the message ("op library").
void check_loadable(const std::string& path, const std::string& what);

// The ELF e_machine names the messages use ("x86_64", "aarch64", ...; "ELF machine N" otherwise).
std::string elf_machine_name(unsigned machine);

}  // namespace edgebit::engine
