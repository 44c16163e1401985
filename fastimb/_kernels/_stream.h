/* Copies whose destination is written once and not read again soon (the samplers' output
 * arrays): non-temporal stores send the bytes to memory without first reading the
 * destination's cache lines, which halves the memory traffic of a large write and leaves
 * the caches to the data still being read.
 *
 * fastimb_stream_copy(dst, src, n) copies n bytes (plain copies for the unaligned head
 * and the tail); fastimb_stream_fence() orders the streamed stores before any later
 * store, and must end every run of stream copies. Where SSE2 is not available both fall
 * back to memcpy and nothing.
 */
#ifndef FASTIMB_STREAM_H
#define FASTIMB_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)
#define FASTIMB_HAVE_STREAM 1
#include <emmintrin.h>
#endif

static inline void fastimb_stream_copy(void* dst, const void* src, size_t n) {
#ifdef FASTIMB_HAVE_STREAM
    char* d = (char*)dst;
    const char* s = (const char*)src;
    size_t head = (size_t)((16 - ((uintptr_t)d & 15)) & 15);
    if (n < 64 + head) {
        memcpy(d, s, n);
        return;
    }
    memcpy(d, s, head);
    d += head;
    s += head;
    n -= head;
    for (; n >= 64; n -= 64, d += 64, s += 64) {
        __m128i a = _mm_loadu_si128((const __m128i*)s);
        __m128i b = _mm_loadu_si128((const __m128i*)(s + 16));
        __m128i c = _mm_loadu_si128((const __m128i*)(s + 32));
        __m128i e = _mm_loadu_si128((const __m128i*)(s + 48));
        _mm_stream_si128((__m128i*)d, a);
        _mm_stream_si128((__m128i*)(d + 16), b);
        _mm_stream_si128((__m128i*)(d + 32), c);
        _mm_stream_si128((__m128i*)(d + 48), e);
    }
    for (; n >= 16; n -= 16, d += 16, s += 16)
        _mm_stream_si128((__m128i*)d, _mm_loadu_si128((const __m128i*)s));
    memcpy(d, s, n);
#else
    memcpy(dst, src, n);
#endif
}

static inline void fastimb_stream_fence(void) {
#ifdef FASTIMB_HAVE_STREAM
    _mm_sfence();
#endif
}

#endif
