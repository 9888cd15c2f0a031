# CMake toolchain for cross-compiling the addon to linux-arm64 on a Debian x86-64 host.
# Needs Debian's cross compiler: apt-get install g++-aarch64-linux-gnu (gives /usr/aarch64-linux-gnu as the sysroot
# for glibc and libstdc++). Used by scripts/cross/build-linux-arm64.sh; CMakeLists.txt is the same as for x64.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_STRIP aarch64-linux-gnu-strip)

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# OpenVINO's CMake config is named by an absolute OpenVINO_DIR (the aarch64 wheel, outside the sysroot), and it finds
# its TBB next to itself: let package lookups see both.
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
