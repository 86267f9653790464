/*
 * buf — a growable byte buffer with a read cursor.
 *
 * Connections read into a buf and consume from its front; builders in proto append
 * to its back. `pos` is where unconsumed bytes start, `len` where they end.
 */
#ifndef WARMPOOL_BUF_H
#define WARMPOOL_BUF_H

#include <stddef.h>
#include <stdint.h>

struct wp_buf {
    uint8_t *data;
    size_t pos;        /* first unconsumed byte */
    size_t len;        /* one past the last byte */
    size_t cap : 63;   /* bytes allocated */
    size_t failed : 1; /* an allocation failed: bytes were lost (see buf_failed) */
};

/* buf_reserve when the room is not there yet (a failed buffer claims none). */
int buf_grow(struct wp_buf *b, size_t extra);
/*
 * Make room for `extra` more bytes at the end; returns 0, or -1 when out of memory.
 * A failure is sticky: the buffer is marked failed until buf_free, so that code which
 * builds output without checking each append is caught once, where the buffer is
 * flushed (a failed buffer is never sent: its connection is closed with 53200).
 * Inline: the room is there for almost every call.
 */
static inline int buf_reserve(struct wp_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    return buf_grow(b, extra);
}
int buf_append(struct wp_buf *b, const void *data, size_t n);
/* Move unconsumed bytes to the front so the tail has room. */
void buf_compact(struct wp_buf *b);
/* Inline: several calls per relayed request. */
static inline void buf_consume(struct wp_buf *b, size_t n)
{
    b->pos += n;
    if (b->pos >= b->len)
        b->pos = b->len = 0;
}
void buf_reset(struct wp_buf *b);
void buf_free(struct wp_buf *b);
void buf_give_back(struct wp_buf *b); /* buf_release_if_empty's work */
/* Give an empty buffer's memory back (to a small cache of blocks that buf_reserve
   reuses), so idle connections hold no I/O buffers. No-op when bytes are unread. */
static inline void buf_release_if_empty(struct wp_buf *b)
{
    if (b->data && b->len == b->pos)
        buf_give_back(b);
}
/*
 * One read(2) from a non-blocking fd into the tail, after making room for `room`
 * bytes. Returns the bytes read (> 0), 0 when nothing is ready (EAGAIN/EINTR), -1 on
 * EOF, error or out of memory.
 */
long buf_read_fd(struct wp_buf *b, int fd, size_t room);
/* Blocks in the cache now, with their bytes in *bytes (SHOW MEM). */
int buf_cache_info(size_t *bytes);
/* Free the block cache (at exit). */
void buf_cache_clear(void);

/* An append or reservation failed since the last buf_free: its contents are not what
   was meant to be in it. */
static inline int buf_failed(const struct wp_buf *b)
{
    return b->failed;
}

static inline size_t buf_unread(const struct wp_buf *b)
{
    return b->len - b->pos;
}

/* n more bytes at the end, counted as written: the caller fills them all. NULL when
   out of memory (the buffer is failed then, as after a failed buf_append). */
static inline uint8_t *buf_append_space(struct wp_buf *b, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return NULL;
    uint8_t *space = b->data + b->len;
    b->len += n;
    return space;
}

static inline const uint8_t *buf_head(const struct wp_buf *b)
{
    return b->data ? b->data + b->pos : b->data;
}

#endif
