# Cross toolchain for aarch64 Linux with Debian's g++-aarch64-linux-gnu.
#   cmake -S runtime_ops -B build-arm -DCMAKE_TOOLCHAIN_FILE=runtime_ops/cmake/aarch64-linux-gnu.cmake
# Executables are linked -static so `qemu-aarch64 ./kernel_tests` needs no -L sysroot;
# shared libraries are unaffected. -DEDGEBIT_STATIC_EXE=OFF links them dynamically (needed for
# UBSan: the static libubsan.a is linked after libstdc++ and misses its symbols); run those
# with `qemu-aarch64 -L /usr/aarch64-linux-gnu`.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(EDGEBIT_CROSS_PREFIX "aarch64-linux-gnu-" CACHE STRING "Cross compiler prefix")
set(CMAKE_C_COMPILER ${EDGEBIT_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${EDGEBIT_CROSS_PREFIX}g++)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

if(NOT DEFINED EDGEBIT_STATIC_EXE OR EDGEBIT_STATIC_EXE)
  set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
