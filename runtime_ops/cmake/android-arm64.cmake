# Android arm64-v8a via the user's own NDK (none is reachable from the edgebit dev machine):
#   cmake -S runtime_ops -B build-android -DANDROID_NDK=/path/to/ndk \
#         -DCMAKE_TOOLCHAIN_FILE=runtime_ops/cmake/android-arm64.cmake
# ANDROID_NDK may also come from the environment (ANDROID_NDK or ANDROID_NDK_HOME).
if(NOT ANDROID_NDK)
  if(DEFINED ENV{ANDROID_NDK})
    set(ANDROID_NDK "$ENV{ANDROID_NDK}")
  elseif(DEFINED ENV{ANDROID_NDK_HOME})
    set(ANDROID_NDK "$ENV{ANDROID_NDK_HOME}")
  endif()
endif()
if(NOT ANDROID_NDK)
  message(FATAL_ERROR
    "edgebit android-arm64 toolchain: ANDROID_NDK is not set. Pass -DANDROID_NDK=/path/to/ndk "
    "(or export ANDROID_NDK) pointing at an Android NDK (r23 or newer).")
endif()
set(_edgebit_ndk_toolchain "${ANDROID_NDK}/build/cmake/android.toolchain.cmake")
if(NOT EXISTS "${_edgebit_ndk_toolchain}")
  message(FATAL_ERROR
    "edgebit android-arm64 toolchain: ${_edgebit_ndk_toolchain} not found; "
    "ANDROID_NDK='${ANDROID_NDK}' does not look like an NDK root.")
endif()
# Keep the values across try_compile sub-projects.
set(ANDROID_NDK "${ANDROID_NDK}" CACHE PATH "Android NDK root")
set(ANDROID_ABI arm64-v8a CACHE STRING "Android ABI")
set(ANDROID_PLATFORM android-24 CACHE STRING "Minimum Android API level")
include("${_edgebit_ndk_toolchain}")
