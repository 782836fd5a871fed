#!/usr/bin/env bash
# install_test.sh <mode> <goro source dir> <goro build dir> <scratch dir> [other compiler]
#   find_package:   cmake --install goro, then build a consumer with find_package(goro)
#   pkg_config:     cmake --install goro, then compile a consumer with pkg-config
#   subdirectory:   build a parent project that add_subdirectory()s goro
#   other_compiler: cmake --install goro, then build the consumer with the other
#                   compiler (g++ <-> clang++): one ABI whichever compiler
#   library_only:   configure, build and install goro alone with the other compiler,
#                   as shared libraries, with BUILD_TESTING=OFF and GoogleTest and
#                   Google Benchmark made unfindable; then build the consumer with
#                   this build's compiler against it
#   examples:       cmake --install goro, then build docs/examples on its own
#                   against it and run its tests
set -euo pipefail
mode=$1 src=$2 build=$3 scratch=$4 other=${5:-}
rm -rf "$scratch" && mkdir -p "$scratch"
here=$(cd "$(dirname "$0")" && pwd)
# quiet runs a step with its output in a log, shown only if the step fails.
quiet() {
  if ! "$@" >"$scratch/step.log" 2>&1; then
    echo "install_test.sh $mode: failed: $*" >&2
    cat "$scratch/step.log" >&2
    exit 1
  fi
}
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
case "$mode" in
  find_package)
    quiet cmake --install "$build" --prefix "$scratch/prefix"
    quiet cmake -S "$here/consumer" -B "$scratch/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$scratch/prefix"
    quiet cmake --build "$scratch/build"
    "$scratch/build/consumer"
    ;;
  pkg_config)
    quiet cmake --install "$build" --prefix "$scratch/prefix"
    export PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig:$scratch/prefix/lib64/pkgconfig"
    # shellcheck disable=SC2046
    ${CXX:-c++} -O1 -o "$scratch/consumer" "$here/main.cpp" $(pkg-config --cflags --libs goro)
    "$scratch/consumer"
    ;;
  subdirectory)
    quiet cmake -S "$here/parent" -B "$scratch/build" "${gen[@]}" -DGORO_SOURCE_DIR="$src" -DCMAKE_BUILD_TYPE=Release
    quiet cmake --build "$scratch/build" --target consumer -j2
    "$scratch/build/consumer"
    ;;
  other_compiler)
    quiet cmake --install "$build" --prefix "$scratch/prefix"
    quiet cmake -S "$here/consumer" -B "$scratch/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
      -DCMAKE_CXX_COMPILER="$other"
    quiet cmake --build "$scratch/build"
    "$scratch/build/consumer"
    ;;
  library_only)
    # No find_package(GTest) or find_package(benchmark) may run: disabled,
    # a REQUIRED one would fail the configure.
    quiet cmake -S "$src" -B "$scratch/goro" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$other" \
      -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=ON -DGORO_BUILD_TOOLS=OFF \
      -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON
    quiet cmake --build "$scratch/goro" -j2
    quiet cmake --install "$scratch/goro" --prefix "$scratch/prefix"
    quiet ls "$scratch"/prefix/lib*/libgoro_runtime.so
    quiet cmake -S "$here/consumer" -B "$scratch/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
      -DCMAKE_CXX_COMPILER="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")"
    quiet cmake --build "$scratch/build"
    "$scratch/build/consumer"
    ;;
  examples)
    quiet cmake --install "$build" --prefix "$scratch/prefix"
    quiet cmake -S "$src/docs/examples" -B "$scratch/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$scratch/prefix"
    quiet cmake --build "$scratch/build" -j2
    ctest --test-dir "$scratch/build" --output-on-failure
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
