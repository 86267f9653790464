/*
 * fuzz_text — what the SQL-text fuzz targets share: the input framed by whitespace
 * and followed by a second statement, for the "surroundings change nothing" checks.
 */
#ifndef WARMPOOL_FUZZ_TEXT_H
#define WARMPOOL_FUZZ_TEXT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char pad_front[] = " \n\t";
static const char pad_back[] = "\r\n ";
static const char second[] = "\n; SELECT 1";

/* front + data + back in one exact-size heap block (freed by the caller). */
static inline char *framed(const uint8_t *data, size_t size, const char *front,
                           const char *back, size_t *len)
{
    size_t nf = strlen(front), nb = strlen(back);
    *len = nf + size + nb;
    char *text = malloc(*len ? *len : 1);
    if (!text)
        abort();
    memcpy(text, front, nf);
    if (size)
        memcpy(text + nf, data, size);
    memcpy(text + nf + size, back, nb);
    return text;
}

#endif
