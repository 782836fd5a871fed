// sanitizers.hpp: which sanitizer this build runs under, and their hooks.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define GORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define GORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TSAN 1
#endif
#endif

#if GORO_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#define GORO_UNPOISON(addr, size) ASAN_UNPOISON_MEMORY_REGION(addr, size)
#else
#define GORO_UNPOISON(addr, size) ((void)(addr), (void)(size))
#endif

#if GORO_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace goro::rt {
inline constexpr bool kUnderSanitizer =
#if GORO_ASAN || GORO_TSAN
    true;
#else
    false;
#endif
}  // namespace goro::rt
