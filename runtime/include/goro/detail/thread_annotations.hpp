// goro/detail/thread_annotations.hpp: clang's thread-safety attributes
// (-Wthread-safety), so that which lock guards what is checked by the
// compiler, not only written in comments. Empty under other compilers.
// Not part of the public contract.
//
// goro's locks break one rule the analysis assumes: a goroutine that parks
// takes a primitive's lock and the scheduler releases it after the switch
// (park's unlock function). Those hand-offs are marked
// GORO_NO_THREAD_SAFETY_ANALYSIS with a comment saying who releases.
#pragma once

#if defined(__clang__)
#define GORO_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GORO_THREAD_ANNOTATION(x)
#endif

#define GORO_CAPABILITY(x) GORO_THREAD_ANNOTATION(capability(x))
#define GORO_SCOPED_CAPABILITY GORO_THREAD_ANNOTATION(scoped_lockable)
#define GORO_GUARDED_BY(x) GORO_THREAD_ANNOTATION(guarded_by(x))
#define GORO_PT_GUARDED_BY(x) GORO_THREAD_ANNOTATION(pt_guarded_by(x))
#define GORO_ACQUIRE(...) GORO_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define GORO_RELEASE(...) GORO_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define GORO_TRY_ACQUIRE(...) GORO_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define GORO_REQUIRES(...) GORO_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define GORO_EXCLUDES(...) GORO_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define GORO_ASSERT_CAPABILITY(x) GORO_THREAD_ANNOTATION(assert_capability(x))
#define GORO_NO_THREAD_SAFETY_ANALYSIS GORO_THREAD_ANNOTATION(no_thread_safety_analysis)
