/*
 * buf — growable byte buffer with a read cursor (see include/warmpool/buf.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "warmpool/buf.h"

/* Recently released blocks, reused before asking malloc: idle connections give their
   buffers back on every transaction, so this must cost a few instructions, not a
   malloc/free pair. Single-threaded (the event loop). */
#define CACHE_MAX 64
static struct {
    uint8_t *data;
    size_t cap;
} cache[CACHE_MAX];
static int cached;

static int take_cached(struct wp_buf *b, size_t need)
{
    if (cached == 0 || cache[cached - 1].cap < need)
        return 0;
    cached--;
    b->data = cache[cached].data;
    b->cap = cache[cached].cap;
    b->pos = b->len = 0;
    return 1;
}

void buf_give_back(struct wp_buf *b)
{
    if (cached < CACHE_MAX) {
        cache[cached].data = b->data;
        cache[cached].cap = b->cap;
        cached++;
    } else {
        free(b->data);
    }
    b->data = NULL;
    b->pos = b->len = b->cap = 0;
}

int buf_cache_info(size_t *bytes)
{
    *bytes = 0;
    for (int i = 0; i < cached; i++)
        *bytes += cache[i].cap;
    return cached;
}

void buf_cache_clear(void)
{
    while (cached > 0)
        free(cache[--cached].data);
}

/* The buffer claims no room from now on, so that every later reservation takes the
   slow path below and fails there: the check costs nothing while all is well. */
static int fail(struct wp_buf *b)
{
    b->failed = 1;
    b->cap = b->len;
    return -1;
}

int buf_grow(struct wp_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    if (b->failed)
        return -1; /* nothing goes after a lost piece */
    if (!b->data && take_cached(b, extra))
        return 0;
    if (b->pos > 0 && b->cap - buf_unread(b) >= extra) {
        buf_compact(b);
        return 0;
    }
    size_t need = buf_unread(b) + extra;
    if (need < extra)
        return fail(b); /* overflow */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 4)
            return fail(b); /* cap has 63 bits */
        cap *= 2;
    }
    buf_compact(b);
    uint8_t *data = realloc(b->data, cap);
    if (!data)
        return fail(b);
    b->data = data;
    b->cap = cap;
    return 0;
}

long buf_read_fd(struct wp_buf *b, int fd, size_t room)
{
    if (buf_reserve(b, room) < 0)
        return -1;
    ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
    if (n > 0) {
        b->len += (size_t)n;
        return (long)n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    return -1;
}

int buf_append(struct wp_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

void buf_compact(struct wp_buf *b)
{
    if (b->pos == 0)
        return;
    size_t unread = buf_unread(b);
    if (unread)
        memmove(b->data, b->data + b->pos, unread);
    b->pos = 0;
    b->len = unread;
}

void buf_reset(struct wp_buf *b)
{
    b->pos = b->len = 0;
}

void buf_free(struct wp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->pos = b->len = b->cap = 0;
    b->failed = 0;
}
