# Cross-compiling for 64-bit Arm Linux against Debian's cross GCC toolchain (g++-aarch64-linux-gnu:
# compiler, binutils, libstdc++ and glibc for arm64). `make test-native` runs the result under
# qemu-aarch64 (qemu-user). GCC by default; Clang with -DCMAKE_CXX_COMPILER=clang++, which then
# targets aarch64-linux-gnu and takes its headers, libraries and linker from that same toolchain.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
if(NOT CMAKE_CXX_COMPILER)
  set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
endif()
set(CMAKE_CXX_COMPILER_TARGET aarch64-linux-gnu)  # --target=, for Clang only

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Static, so qemu-aarch64 needs no arm64 library directory (-L) to start the binary.
set(CMAKE_EXE_LINKER_FLAGS_INIT -static)
# CTest starts the test binary through this.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
