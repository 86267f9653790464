/*
 * conn: the one object that touches a socket, driven over a real socketpair and a
 * real libevent base — the input cap at the read site, own bytes before relayed ones,
 * a partial write arming the write event, last words at close, a lost buffer never
 * sent, and the mid-message question.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "warmpool/conn.h"
#include "warmpool/proto.h"
#include "warmpool/runtime.h"

struct pair {
    struct wp_conn conn; /* our end */
    int peer;            /* the other end, blocking, read and written by the test */
    int readable_calls, writable_calls;
};

static void on_readable(void *owner)
{
    ((struct pair *)owner)->readable_calls++;
}

static void on_writable(void *owner)
{
    ((struct pair *)owner)->writable_calls++;
}

static void open_pair(struct pair *p)
{
    int sv[2];
    memset(p, 0, sizeof *p);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(conn_open(&p->conn, sv[0], on_readable, on_writable, p), 0);
    p->peer = sv[1];
}

static void close_pair(struct pair *p)
{
    conn_free(&p->conn);
    close(p->peer);
}

static void send_all(int fd, const void *data, size_t n)
{
    assert_int_equal(write(fd, data, n), (ssize_t)n);
}

/* A v3 message header: type and length (the length counts itself). */
static void put_header(uint8_t *out, uint8_t type, uint32_t len)
{
    out[0] = type;
    proto_put_u32(out + 1, len);
}

static int setup(void **state)
{
    (void)state;
    wp_rt.base = event_base_new();
    return wp_rt.base ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    event_base_free(wp_rt.base);
    wp_rt.base = NULL;
    return 0;
}

/* Reading stops at the cap: once that many bytes wait unconsumed, a read pauses the
   read event and reads nothing (one read may take more than `room`: what the buffer
   has room for). */
static void test_read_stops_at_cap(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    uint8_t bytes[64] = {0};
    put_header(bytes, 'Q', 63);
    for (int i = 0; i < 8; i++)
        send_all(p.peer, bytes, sizeof bytes);
    while (conn_unread(&p.conn) < 64)
        assert_true(conn_read(&p.conn, 16, 64, 1000) > 0);
    size_t held = conn_unread(&p.conn);
    assert_false(p.conn.read_paused);
    /* The message at ready (0) is 64 bytes and no more is wanted: nothing is read. */
    assert_int_equal(conn_read(&p.conn, 16, 64, 1000), 0);
    assert_true(p.conn.read_paused);
    assert_int_equal(conn_unread(&p.conn), held);
    /* Consumed: reading goes on. */
    buf_consume(&p.conn.in, held);
    conn_pause_read(&p.conn, 0);
    assert_false(p.conn.read_paused);
    assert_true(conn_read(&p.conn, 16, 64, 1000) > 0);
    close_pair(&p);
}

/* Beyond the cap, the message at the ready position may come in whole when its header
   asks for no more than max_message; one that asks for more does not lift the cap. */
static void test_read_whole_message_beyond_cap(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    uint8_t big[3000] = {0};
    put_header(big, 'P', 2999);
    send_all(p.peer, big, sizeof big);
    send_all(p.peer, big, sizeof big); /* more than the message waits behind it */
    long n;
    while ((n = conn_read(&p.conn, 64, 100, 5000)) > 0)
        ;
    assert_int_equal(n, 0);
    assert_true(p.conn.read_paused);
    assert_true(conn_unread(&p.conn) >= sizeof big); /* the whole message is in */
    close_pair(&p);

    open_pair(&p);
    put_header(big, 'P', 9000); /* above max_message: the cap holds */
    for (int i = 0; i < 4; i++)
        send_all(p.peer, big, sizeof big);
    while ((n = conn_read(&p.conn, 64, 100, 5000)) > 0)
        ;
    assert_int_equal(n, 0);
    assert_true(p.conn.read_paused);
    assert_true(conn_unread(&p.conn) >= 100 && conn_unread(&p.conn) < 4 * sizeof big);
    close_pair(&p);
}

/* EOF is an error for the reader. */
static void test_read_eof(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    shutdown(p.peer, SHUT_WR);
    assert_int_equal(conn_read(&p.conn, 16, 0, 0), CONN_ERROR);
    close_pair(&p);
}

/* Own bytes go before the peer's ready bytes; only ready bytes of the peer go. */
static void test_flush_own_then_ready(void **state)
{
    (void)state;
    struct pair to, from;
    open_pair(&to);
    open_pair(&from);
    buf_append(&to.conn.out, "own|", 4);
    buf_append(&from.conn.in, "readyNOT", 8);
    from.conn.ready = 5;
    assert_int_equal(conn_flush(&to.conn, &from.conn), 1);
    char got[16] = {0};
    assert_int_equal(read(to.peer, got, sizeof got), 9);
    assert_string_equal(got, "own|ready");
    assert_int_equal(from.conn.ready, 0);
    assert_int_equal(conn_unread(&from.conn), 3); /* "NOT" stays */
    assert_int_equal(buf_unread(&to.conn.out), 0);
    assert_false(to.conn.write_armed);
    close_pair(&to);
    close_pair(&from);
}

/* A full socket leaves bytes behind and arms the write event; as the reader takes
   them the write event reaches the owner, and the last flush disarms it. */
static void test_partial_write_arms_write_event(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    assert_int_equal(fcntl(p.peer, F_SETFL, O_NONBLOCK), 0);
    size_t big = 4 << 20, taken = 0;
    assert_int_equal(buf_reserve(&p.conn.out, big), 0);
    memset(p.conn.out.data + p.conn.out.len, 'x', big);
    p.conn.out.len += big;
    assert_int_equal(conn_flush(&p.conn, NULL), 0);
    assert_true(p.conn.write_armed);
    assert_true(conn_output_pending(&p.conn));
    int flushes = 0;
    char sink[65536];
    while (taken < big) {
        ssize_t n = read(p.peer, sink, sizeof sink);
        if (n > 0)
            taken += (size_t)n;
        else
            assert_true(n < 0 && errno == EAGAIN);
        event_base_loop(wp_rt.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
        if (p.writable_calls > 0) {
            p.writable_calls = 0;
            flushes++;
            assert_true(conn_flush(&p.conn, NULL) >= 0);
        }
    }
    assert_true(flushes > 0);
    assert_false(conn_output_pending(&p.conn));
    assert_false(p.conn.write_armed);
    assert_int_equal(taken, big);
    close_pair(&p);
}

/* A buffer that lost bytes to a failed allocation is never sent, not even at close. */
static void test_failed_output_is_not_sent(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    buf_append(&p.conn.out, "partial", 7);
    p.conn.out.failed = 1;
    assert_int_equal(conn_flush(&p.conn, NULL), CONN_NO_MEMORY);
    conn_close(&p.conn);
    char got[16];
    assert_int_equal(read(p.peer, got, sizeof got), 0); /* EOF, no bytes */
    close_pair(&p);
}

/* Closing tries the owner's last words once, then the peer sees EOF. */
static void test_close_sends_last_words(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    buf_append(&p.conn.out, "FATAL", 5);
    conn_close(&p.conn);
    assert_int_equal(p.conn.fd, -1);
    char got[16] = {0};
    assert_int_equal(read(p.peer, got, sizeof got), 5);
    assert_string_equal(got, "FATAL");
    assert_int_equal(read(p.peer, got, sizeof got), 0);
    assert_int_equal(conn_read(&p.conn, 16, 0, 0), CONN_ERROR);
    assert_int_equal(conn_flush(&p.conn, NULL), CONN_ERROR);
    close_pair(&p);
}

/* The read event reaches the owner's readable handler; pausing silences it. */
static void test_events_reach_owner(void **state)
{
    (void)state;
    struct pair p;
    open_pair(&p);
    send_all(p.peer, "x", 1);
    event_base_loop(wp_rt.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
    assert_int_equal(p.readable_calls, 1);
    conn_pause_read(&p.conn, 1);
    event_base_loop(wp_rt.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
    assert_int_equal(p.readable_calls, 1);
    assert_true(conn_input_pending(&p.conn));
    assert_int_equal(conn_read(&p.conn, 16, 0, 0), 1);
    assert_true(conn_input_pending(&p.conn)); /* read, not consumed */
    buf_consume(&p.conn.in, 1);
    assert_false(conn_input_pending(&p.conn));
    shutdown(p.peer, SHUT_WR);
    assert_true(conn_input_pending(&p.conn)); /* EOF waits too */
    close_pair(&p);
}

/* Mid-message: part of a message passed on with the rest to come, or bytes scanned
   but not all written. */
static void test_mid_message(void **state)
{
    (void)state;
    struct wp_conn cn = {.fd = -1};
    assert_false(conn_mid_message(&cn));
    cn.msg_left = 3;
    assert_true(conn_mid_message(&cn));
    cn.msg_left = 0;
    cn.ready = 1;
    assert_true(conn_mid_message(&cn));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_stops_at_cap),
        cmocka_unit_test(test_read_whole_message_beyond_cap),
        cmocka_unit_test(test_read_eof),
        cmocka_unit_test(test_flush_own_then_ready),
        cmocka_unit_test(test_partial_write_arms_write_event),
        cmocka_unit_test(test_failed_output_is_not_sent),
        cmocka_unit_test(test_close_sends_last_words),
        cmocka_unit_test(test_events_reach_owner),
        cmocka_unit_test(test_mid_message),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
