#!/usr/bin/env bash
# install_test.sh <mode> <goro source dir> <goro build dir> <scratch dir>
#   find_package: cmake --install goro, then build a consumer with find_package(goro)
#   pkg_config:   cmake --install goro, then compile a consumer with pkg-config
#   subdirectory: build a parent project that add_subdirectory()s goro
set -euo pipefail
mode=$1 src=$2 build=$3 scratch=$4
rm -rf "$scratch" && mkdir -p "$scratch"
here=$(cd "$(dirname "$0")" && pwd)
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
case "$mode" in
  find_package)
    cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
    cmake -S "$here/consumer" -B "$scratch/build" "${gen[@]}" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
    cmake --build "$scratch/build" >/dev/null
    "$scratch/build/consumer"
    ;;
  pkg_config)
    cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
    export PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig:$scratch/prefix/lib64/pkgconfig"
    # shellcheck disable=SC2046
    ${CXX:-c++} -O1 -o "$scratch/consumer" "$here/main.cpp" $(pkg-config --cflags --libs goro)
    "$scratch/consumer"
    ;;
  subdirectory)
    cmake -S "$here/parent" -B "$scratch/build" "${gen[@]}" -DGORO_SOURCE_DIR="$src" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$scratch/build" --target consumer -j2 >/dev/null
    "$scratch/build/consumer"
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
