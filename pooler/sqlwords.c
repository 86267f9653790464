/*
 * sqlwords — which SQL scanners a text needs (see include/warmpool/sqlwords.h).
 */
#include <stdint.h>
#include <string.h>

#include "warmpool/sqllex.h"
#include "warmpool/sqlwords.h"

/* ---- the words, around a pair found at sql[i], sql[i + 1] ---- */

/*
 * sqlprep's words are found where they start: EXecute, PRepare, DEallocate. `b | 0x20`
 * is b's lower case for a letter and never turns anything else into one of these.
 */
static int prepared_word_at(const char *sql, size_t len, size_t i)
{
    switch (sql[i] | 0x20) {
    case 'e':
        return sqllex_word_at(sql, len, i, "execute", 7);
    case 'p':
        return sqllex_word_at(sql, len, i, "prepare", 7);
    case 'd':
        return sqllex_word_at(sql, len, i, "deallocate", 10);
    default:
        return 0;
    }
}

/*
 * session_sql's by a pair inside them, chosen so that ordinary SQL rarely holds it and
 * words share compares: sET, dIScard / lISten / advISory, clOSe, drOP, teMP, hoLD, u&".
 */
static int session_word_at(const char *sql, size_t len, size_t i)
{
    char second = (char)(sql[i + 1] | 0x20);
    switch ((char)(sql[i] | 0x20)) {
    case 'e':
        return second == 't' && i >= 1 && sqllex_word_at(sql, len, i - 1, "set", 3);
    case 'i':
        return second == 's' && i >= 1 &&
               (sqllex_word_at(sql, len, i - 1, "discard", 7) ||
                sqllex_word_at(sql, len, i - 1, "listen", 6) ||
                (i >= 3 && sqllex_word_at(sql, len, i - 3, "advisory", 8)));
    case 'o':
        return i >= 2 && ((second == 's' && sqllex_word_at(sql, len, i - 2, "close", 5)) ||
                          (second == 'p' && sqllex_word_at(sql, len, i - 2, "drop", 4)));
    case 'm':
        return second == 'p' && i >= 2 && sqllex_word_at(sql, len, i - 2, "temp", 4);
    case 'l':
        return second == 'd' && i >= 2 && sqllex_word_at(sql, len, i - 2, "hold", 4);
    case '&':
        return second == '"' && i >= 1 && sqllex_word_at(sql, len, i - 1, "u&\"", 3);
    default:
        return 0;
    }
}

/* The candidate places of one block: bit k for sql[base + k]. */
struct pair_masks {
    unsigned prepared, session;
};

/* The families found at the candidates, among those wanted. */
static unsigned words_at_candidates(const char *sql, size_t len, size_t base, struct pair_masks m,
                                    unsigned wanted)
{
    unsigned found = 0;
    if (wanted & SQLWORDS_PREPARED)
        for (unsigned b = m.prepared; b; b &= b - 1)
            if (prepared_word_at(sql, len, base + (size_t)__builtin_ctz(b))) {
                found |= SQLWORDS_PREPARED;
                break;
            }
    if (wanted & SQLWORDS_SESSION)
        for (unsigned b = m.session; b; b &= b - 1)
            if (session_word_at(sql, len, base + (size_t)__builtin_ctz(b))) {
                found |= SQLWORDS_SESSION;
                break;
            }
    return found;
}

/* Most blocks hold no candidate at all: that is decided inline. */
static inline __attribute__((always_inline)) unsigned
words_in(const char *sql, size_t len, size_t base, struct pair_masks m, unsigned wanted)
{
    if (!(m.prepared | m.session))
        return 0;
    return words_at_candidates(sql, len, base, m, wanted);
}

#if defined(__SSE2__) && defined(__x86_64__)
#include <immintrin.h>

/* The bytes compared, 32 of each in memory: a compare then reads its constant as an
   operand, where _mm_set1_epi8 cost three instructions per constant per block. */
#define BYTES8(c) c, c, c, c, c, c, c, c
#define BYTES32(c) BYTES8(c), BYTES8(c), BYTES8(c), BYTES8(c)
enum { K_LOWER, K_E, K_T, K_I, K_S, K_O, K_M, K_P, K_L, K_D, K_AMP, K_QUOTE, K_X, K_R, K_COUNT };
static const char pair_bytes[K_COUNT][32] __attribute__((aligned(32))) = {
    {BYTES32(0x20)}, {BYTES32('e')}, {BYTES32('t')}, {BYTES32('i')}, {BYTES32('s')},
    {BYTES32('o')},  {BYTES32('m')}, {BYTES32('p')}, {BYTES32('l')}, {BYTES32('d')},
    {BYTES32('&')},  {BYTES32('"')}, {BYTES32('x')}, {BYTES32('r')},
};

/* pair_bytes, hidden from the optimiser: knowing each row is one byte repeated, GCC
   would build it again with three instructions instead of reading it. */
static const char (*opaque_pair_bytes(void))[32]
{
    const char(*rows)[32] = pair_bytes;
    __asm__("" : "+r"(rows));
    return rows;
}

static inline __m128i same16(__m128i v, const char (*k)[32], int row)
{
    return _mm_cmpeq_epi8(v, _mm_load_si128((const __m128i *)(const void *)k[row]));
}

/* Both families' pairs starting in sql[at, at + 16) (reads sql[at, at + 17)). */
static inline struct pair_masks pairs_in_16(const char *sql, size_t at)
{
    const char(*k)[32] = opaque_pair_bytes();
    __m128i lower = _mm_load_si128((const __m128i *)(const void *)k[K_LOWER]);
    __m128i a = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(sql + at)), lower);
    __m128i b = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(sql + at + 1)), lower);
    __m128i a_e = same16(a, k, K_E), a_o = same16(a, k, K_O), a_p = same16(a, k, K_P);
    __m128i a_d = same16(a, k, K_D), b_p = same16(b, k, K_P);
    __m128i session = _mm_and_si128(a_e, same16(b, k, K_T));
    session = _mm_or_si128(session,
                           _mm_and_si128(_mm_or_si128(same16(a, k, K_I), a_o), same16(b, k, K_S)));
    session = _mm_or_si128(session, _mm_and_si128(_mm_or_si128(a_o, same16(a, k, K_M)), b_p));
    session = _mm_or_si128(session, _mm_and_si128(same16(a, k, K_L), same16(b, k, K_D)));
    session = _mm_or_si128(session, _mm_and_si128(same16(a, k, K_AMP), same16(b, k, K_QUOTE)));
    __m128i prepared = _mm_and_si128(a_e, same16(b, k, K_X));
    prepared = _mm_or_si128(prepared, _mm_and_si128(a_p, same16(b, k, K_R)));
    prepared = _mm_or_si128(prepared, _mm_and_si128(a_d, same16(b, k, K_E)));
    return (struct pair_masks){(unsigned)_mm_movemask_epi8(prepared),
                               (unsigned)_mm_movemask_epi8(session)};
}

__attribute__((target("avx2"), always_inline)) static inline __m256i
same32(__m256i v, const char (*k)[32], int row)
{
    return _mm256_cmpeq_epi8(v, _mm256_load_si256((const __m256i *)(const void *)k[row]));
}

/* As pairs_in_16, 32 places at a time (reads sql[at, at + 33)). */
__attribute__((target("avx2"), always_inline)) static inline struct pair_masks
pairs_in_32(const char *sql, size_t at)
{
    const char(*k)[32] = opaque_pair_bytes();
    __m256i lower = _mm256_load_si256((const __m256i *)(const void *)k[K_LOWER]);
    __m256i a =
        _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(const void *)(sql + at)), lower);
    __m256i b =
        _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(const void *)(sql + at + 1)), lower);
    __m256i a_e = same32(a, k, K_E), a_o = same32(a, k, K_O), a_p = same32(a, k, K_P);
    __m256i a_d = same32(a, k, K_D), b_p = same32(b, k, K_P);
    __m256i session = _mm256_and_si256(a_e, same32(b, k, K_T));
    session = _mm256_or_si256(
        session, _mm256_and_si256(_mm256_or_si256(same32(a, k, K_I), a_o), same32(b, k, K_S)));
    session =
        _mm256_or_si256(session, _mm256_and_si256(_mm256_or_si256(a_o, same32(a, k, K_M)), b_p));
    session = _mm256_or_si256(session, _mm256_and_si256(same32(a, k, K_L), same32(b, k, K_D)));
    session =
        _mm256_or_si256(session, _mm256_and_si256(same32(a, k, K_AMP), same32(b, k, K_QUOTE)));
    __m256i prepared = _mm256_and_si256(a_e, same32(b, k, K_X));
    prepared = _mm256_or_si256(prepared, _mm256_and_si256(a_p, same32(b, k, K_R)));
    prepared = _mm256_or_si256(prepared, _mm256_and_si256(a_d, same32(b, k, K_E)));
    return (struct pair_masks){(unsigned)_mm256_movemask_epi8(prepared),
                               (unsigned)_mm256_movemask_epi8(session)};
}

static struct pair_masks without_seen(struct pair_masks m, unsigned seen)
{
    return (struct pair_masks){m.prepared & ~seen, m.session & ~seen};
}

/* Blocks of 16; after the last whole one, one more that ends where the text does, less
   the places already seen. Needs len >= 17. */
static unsigned by_16(const char *sql, size_t len, unsigned wanted)
{
    unsigned found = 0;
    size_t at = 0;
    for (; at + 17 <= len && found != wanted; at += 16)
        found |= words_in(sql, len, at, pairs_in_16(sql, at), wanted & ~found);
    if (found == wanted || at + 1 >= len)
        return found;       /* every family found, or no pair left */
    size_t last = len - 17; /* its pairs start at last … len - 2 */
    struct pair_masks m = without_seen(pairs_in_16(sql, last), (1u << (at - last)) - 1);
    return found | words_in(sql, len, last, m, wanted & ~found);
}

/* The same, 32 places at a time. Needs len >= 33. */
__attribute__((target("avx2"))) static unsigned by_32(const char *sql, size_t len, unsigned wanted)
{
    unsigned found = 0;
    size_t at = 0;
    for (; at + 33 <= len && found != wanted; at += 32)
        found |= words_in(sql, len, at, pairs_in_32(sql, at), wanted & ~found);
    if (found == wanted || at + 1 >= len)
        return found;
    size_t last = len - 33; /* at - last <= 31 */
    struct pair_masks m = without_seen(pairs_in_32(sql, last), (1u << (at - last)) - 1);
    return found | words_in(sql, len, last, m, wanted & ~found);
}

unsigned sqlwords_mentions(const char *sql, size_t len, unsigned wanted)
{
    static int avx2 = -1;
    if (len < 17) {
        char padded[17] = {0}; /* a NUL begins no pair */
        memcpy(padded, sql, len);
        return words_in(sql, len, 0, pairs_in_16(padded, 0), wanted);
    }
    if (len < 33)
        return by_16(sql, len, wanted);
    if (avx2 < 0)
        avx2 = __builtin_cpu_supports("avx2") != 0;
    return avx2 ? by_32(sql, len, wanted) : by_16(sql, len, wanted);
}
#else
unsigned sqlwords_mentions(const char *sql, size_t len, unsigned wanted)
{
    unsigned found = 0;
    for (size_t i = 0; i + 1 < len && found != wanted; i++) {
        if ((wanted & SQLWORDS_PREPARED) && prepared_word_at(sql, len, i))
            found |= SQLWORDS_PREPARED;
        if ((wanted & SQLWORDS_SESSION) && session_word_at(sql, len, i))
            found |= SQLWORDS_SESSION;
    }
    return found;
}
#endif
