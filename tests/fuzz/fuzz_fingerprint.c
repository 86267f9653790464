/*
 * fuzz_fingerprint — libFuzzer target for SQL normalisation (pooler/fingerprint.c),
 * which reads statement text exactly as clients send it.
 *
 * Input: SQL bytes. Checked properties, abort() on violation:
 *   - fingerprint_hash and fingerprint_normalize agree, and the hash is never 0;
 *   - the text is NUL-terminated within the buffer, has no NUL before its end, and a
 *     smaller buffer gives a prefix of the larger buffer's text (cut at a UTF-8
 *     boundary: never ending in the middle of a sequence the full text has whole);
 *   - normalising is deterministic and never reads past the input (ASan).
 *
 * Build: clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *   -fno-sanitize-recover=undefined -Iinclude tests/fuzz/fuzz_fingerprint.c \
 *   pooler/fingerprint.c -o build/fuzz_fingerprint
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/fingerprint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *sql = malloc(size ? size : 1);
    if (!sql)
        abort();
    memcpy(sql, data, size);
    static char big[1 << 16], small[17];
    uint64_t h = fingerprint_hash(sql, size);
    if (h == 0 || fingerprint_normalize(sql, size, big, sizeof big) != h)
        abort();
    if (fingerprint_normalize(sql, size, small, sizeof small) != h)
        abort();
    size_t nbig = strnlen(big, sizeof big), nsmall = strnlen(small, sizeof small);
    if (nbig == sizeof big || nsmall == sizeof small)
        abort();
    /* The short text is the long one cut, at most 3 bytes early (a UTF-8 sequence). */
    if (nsmall > nbig || memcmp(small, big, nsmall) != 0)
        abort();
    if (nbig >= sizeof small - 1 && nsmall + 3 < sizeof small - 1)
        abort();
    if (nbig < sizeof small - 1 && nsmall != nbig)
        abort();
    if (fingerprint_hash(sql, size) != h)
        abort();
    free(sql);
    return 0;
}
