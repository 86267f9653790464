/*
 * fingerprint — normalised SQL text and its 64-bit hash, so that statements that
 * differ only in literal values count as one in the top-statements table and the
 * N+1 detector.
 *
 * Normalisation (pure, no allocation):
 *   - literals become `?`: numbers (with a leading sign where it is unary), strings
 *     ('..', E'..', B'..', X'..', N'..', U&'..', $tag$..$tag$), TRUE and FALSE;
 *   - `$n` placeholders are kept;
 *   - comments are dropped and tokens are re-spaced canonically, so whitespace and
 *     line breaks never change a fingerprint;
 *   - lists made only of literals/placeholders collapse: `IN (1, 2, 3)` and
 *     `IN ($1, $2)` become `IN (...)`, `ARRAY[1, 2]` becomes `ARRAY[...]`;
 *   - trailing semicolons are dropped.
 * Unquoted words are hashed case-folded (SQL folds them) but shown as first written;
 * quoted identifiers are kept exactly. Two texts with the same normalised form have
 * the same hash; the hash is never 0, which callers use as "no fingerprint".
 */
#ifndef WARMPOOL_FINGERPRINT_H
#define WARMPOOL_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

/* Hash of the normalised text of sql[0..len) (stops early at a NUL byte). */
uint64_t fingerprint_hash(const char *sql, size_t len);

/*
 * Same hash, and the normalised text written NUL-terminated to out (outlen > 0).
 * Text longer than outlen - 1 is cut at a UTF-8 character boundary; the hash still
 * covers all of it.
 */
uint64_t fingerprint_normalize(const char *sql, size_t len, char *out, size_t outlen);

#endif
