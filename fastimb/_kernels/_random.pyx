"""The legacy ``numpy.random.RandomState`` draws the samplers replay, compiled.

imbalanced-learn's samplers draw ``randint(0, high, n)`` and ``uniform(size=n)`` from a
``RandomState``, whose bit generator is MT19937 (Matsumoto and Nishimura's Mersenne
Twister). To give the same output fastimb must consume the same stream in the same way;
NumPy does so one word at a time through function pointers. These kernels run the
generator on a copy of its state (624 words ``key`` and the position ``pos`` of the next
word, as ``RandomState.get_state`` gives them) and fill preallocated arrays, with the
exact rules of the legacy methods:

* ``randint(0, high)``: ``rng = high - 1``; no word is drawn when ``rng == 0``; for
  ``rng < 2**32 - 1`` a word is masked with the smallest all-ones mask covering ``rng``
  and redrawn while the result exceeds ``rng``; ``rng == 2**32 - 1`` takes words as they
  come; a larger ``rng`` takes 64-bit values made of two words (first word high), masked
  the same way;
* ``uniform(0, high)``: ``0.0 + high * u`` with ``u = (a * 2**26 + b) / 2**53`` from two
  words, ``a`` the first shifted right by 5 bits, ``b`` the second by 6.

Each function returns the new position; the caller writes the state back.
"""
from libc.stdint cimport int32_t, uint32_t, uint64_t

from fastimb._kernels._typedefs cimport index_t, intp_t

cdef enum:
    N_WORDS = 624
    SHIFT_M = 397

cdef uint32_t MATRIX_A = 0x9908b0df
cdef uint32_t UPPER = 0x80000000
cdef uint32_t LOWER = 0x7fffffff
cdef uint32_t TEMPER_B = 0x9d2c5680
cdef uint32_t TEMPER_C = 0xefc60000
cdef uint64_t WORD_MAX = 0xFFFFFFFF


cdef inline uint32_t twist(uint32_t a, uint32_t b, uint32_t c) noexcept nogil:
    """The recurrence: the upper bit of ``a`` and the lower bits of ``b``, mixed into
    ``c``."""
    cdef uint32_t y = (a & UPPER) | (b & LOWER)
    return c ^ (y >> 1) ^ ((0u - (y & 1)) & MATRIX_A)   # a mask, not a product: SIMD


cdef void regenerate(uint32_t* key) noexcept nogil:
    """The next 624 words of state, in place."""
    cdef int i
    for i in range(N_WORDS - SHIFT_M):
        key[i] = twist(key[i], key[i + 1], key[i + SHIFT_M])
    for i in range(N_WORDS - SHIFT_M, N_WORDS - 1):
        key[i] = twist(key[i], key[i + 1], key[i + SHIFT_M - N_WORDS])
    key[N_WORDS - 1] = twist(key[N_WORDS - 1], key[0], key[SHIFT_M - 1])


cdef struct Words:
    # the generator's state and its current block of 624 outputs, tempered in one pass
    uint32_t* key
    uint32_t block[N_WORDS]
    intp_t pos


cdef inline uint32_t temper(uint32_t y) noexcept nogil:
    y = y ^ (y >> 11)
    y = y ^ ((y << 7) & TEMPER_B)
    y = y ^ ((y << 15) & TEMPER_C)
    return y ^ (y >> 18)


cdef void words_start(Words* w, uint32_t* key, intp_t pos) noexcept nogil:
    cdef intp_t i
    w.key = key
    w.pos = pos
    for i in range(pos, N_WORDS):
        w.block[i] = temper(key[i])


cdef inline void refill(Words* w) noexcept nogil:
    """Start the next block of 624 outputs once the current one is used up."""
    cdef intp_t i
    if w.pos >= N_WORDS:
        regenerate(w.key)
        for i in range(N_WORDS):
            w.block[i] = temper(w.key[i])
        w.pos = 0


cdef inline uint32_t next_word(Words* w) noexcept nogil:
    """The next 32-bit output."""
    refill(w)
    w.pos += 1
    return w.block[w.pos - 1]


cdef inline double unit(uint32_t a, uint32_t b, double high) noexcept nogil:
    """``high`` times the double in [0, 1) made of two words (first a, then b); the
    shifted words fit an int32, whose conversion SIMD has."""
    return 0.0 + high * ((<int32_t> (a >> 5) * 67108864.0 + <int32_t> (b >> 6))
                         / 9007199254740992.0)


cdef inline uint64_t cover_mask(uint64_t v) noexcept nogil:
    """The smallest ``2**b - 1`` that is at least ``v``."""
    v |= v >> 1
    v |= v >> 2
    v |= v >> 4
    v |= v >> 8
    v |= v >> 16
    v |= v >> 32
    return v


def _check_state(uint32_t[::1] key, intp_t pos):
    if key.shape[0] != N_WORDS:
        raise ValueError(f"an MT19937 state has {N_WORDS} words; got {key.shape[0]}")
    if pos < 0 or pos > N_WORDS:
        raise ValueError(f"an MT19937 position lies in [0, {N_WORDS}]; got {pos}")


def randint(uint32_t[::1] key,       # IN/OUT the 624 state words
            intp_t pos,              # IN     position of the next word
            uint64_t high,           # IN     draws lie in [0, high), high >= 1
            index_t[::1] out):       # OUT    (n,) the draws
    """``RandomState.randint(0, high, size=n)`` into ``out``; returns the new position
    (``out``'s dtype must hold ``high - 1``)."""
    _check_state(key, pos)
    if high < 1:
        raise ValueError("high must be at least 1")
    cdef intp_t n = out.shape[0], i, p
    cdef uint64_t rng = high - 1, mask = cover_mask(high - 1), v
    cdef uint32_t rng32 = <uint32_t> rng, mask32 = <uint32_t> mask, w
    cdef Words src
    with nogil:
        words_start(&src, &key[0], pos)
        if rng == 0:
            for i in range(n):
                out[i] = 0
        elif rng == WORD_MAX:
            for i in range(n):
                out[i] = <index_t> next_word(&src)
        elif rng < WORD_MAX:
            # a block's words at a time, branch-free: each masked word is written to the
            # next slot, which moves on only when the word is accepted
            i = 0
            while i < n:
                refill(&src)
                p = src.pos
                while p < N_WORDS and i < n:
                    w = src.block[p] & mask32
                    p += 1
                    out[i] = <index_t> w
                    i += w <= rng32
                src.pos = p
        else:
            for i in range(n):
                while True:
                    v = <uint64_t> next_word(&src) << 32
                    v = (v | next_word(&src)) & mask
                    if v <= rng:
                        break
                out[i] = <index_t> v
    return src.pos


def uniform(uint32_t[::1] key,       # IN/OUT the 624 state words
            intp_t pos,              # IN     position of the next word
            double high,             # IN     draws lie in [0, high)
            double[::1] out):        # OUT    (n,) the draws
    """``RandomState.uniform(0.0, high, size=n)`` into ``out``; returns the new
    position."""
    _check_state(key, pos)
    cdef intp_t n = out.shape[0], i = 0, j, m
    cdef uint32_t a
    cdef const uint32_t* blk
    cdef Words src
    with nogil:
        words_start(&src, &key[0], pos)
        while i < n:
            refill(&src)
            m = min((N_WORDS - src.pos) // 2, n - i)
            if m == 0:           # one word left in the block: the pair straddles two
                a = next_word(&src)
                out[i] = unit(a, next_word(&src), high)
                i += 1
                continue
            blk = &src.block[src.pos]
            for j in range(m):   # the pairs within the block, in SIMD
                out[i + j] = unit(blk[2 * j], blk[2 * j + 1], high)
            src.pos += 2 * m
            i += m
    return src.pos


def skip(uint32_t[::1] key, intp_t pos, intp_t n_words):
    """Advance the stream by ``n_words`` words (e.g. ``2 n`` for ``n`` uniform draws);
    returns the new position."""
    _check_state(key, pos)
    cdef intp_t i
    cdef uint32_t* k = &key[0]
    with nogil:
        for i in range(n_words):
            if pos >= N_WORDS:
                regenerate(k)
                pos = 0
            pos += 1
    return pos
