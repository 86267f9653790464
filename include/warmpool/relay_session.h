/*
 * relay_session — the relay's side of session_state: it scans the client's Query and
 * Parse texts as they go to the backend, feeds the backend's answers to the client's
 * session_state, and carries out what that decides: the pin that keeps a client's
 * backend, its log line and counters, and the parameter sync a RESET makes due.
 */
#ifndef WARMPOOL_RELAY_SESSION_H
#define WARMPOOL_RELAY_SESSION_H

#include <stddef.h>
#include <stdint.h>

struct wp_client;
struct wp_server;

enum relay_session_input {
    SESSION_INPUT_GO,   /* the message goes on to the prepared layer and the backend */
    SESSION_INPUT_WAIT, /* its text is not all in the buffer yet (room is reserved) */
    SESSION_INPUT_NO_MEMORY,
};

/* Does this client message concern session state? Inline: asked for every message.
   msg: the message at the scan position, avail bytes of it in the buffer. */
static inline int relay_session_wants(const struct wp_client *c, uint8_t type, const uint8_t *msg,
                                      size_t avail, uint32_t len, unsigned text_words);

/* Before a Query, Parse, Bind or Execute goes on (msg: the whole message when avail
   covers len). */
enum relay_session_input relay_session_before(struct wp_client *c, const struct wp_server *s,
                                              uint8_t type, const uint8_t *msg, size_t avail,
                                              uint32_t len);
/* After it went (to the backend, or answered by the prepared layer). */
void relay_session_after(struct wp_client *c, struct wp_server *s);

/* The backend's answers for a linked client whose session watches them. */
void relay_session_command(struct wp_server *s, const uint8_t *msg, uint32_t len);
void relay_session_error(struct wp_server *s);
void relay_session_ready(struct wp_server *s);

/* An internal query's CommandComplete (server_reset_query): DISCARD ALL and RESET ALL
   put the backend's unreported settings back to its defaults. */
void relay_session_internal_command(struct wp_server *s, const uint8_t *msg, uint32_t len);

/* Linking and leaving. */
void relay_session_linked(struct wp_client *c);
void relay_session_client_closing(struct wp_client *c);

#include "warmpool/client.h"
#include "warmpool/pool.h"
#include "warmpool/runtime.h"
#include "warmpool/sqlwords.h"

/* A whole Query that mentions no session effect (query_words: sqlwords_mentions of its
   text, the relay's one pass over it), from a client with none waiting for its commit,
   where no statement it could PREPARE stays behind: the common case, with nothing to
   note. */
static inline int relay_session_plain_query(const struct wp_client *c, const uint8_t *msg,
                                            size_t avail, uint32_t len, unsigned query_words)
{
    return avail >= len && len > 5 && msg[len - 1] == '\0' && !(query_words & SQLWORDS_SESSION) &&
           !c->session.watching &&
           (wp_rt.cfg->max_prepared_statements > 0 ||
            c->pool->settings.pool_mode == WP_MODE_SESSION);
}

/* A whole Parse whose text mentions no session effect and does not start with a
   savepoint statement (text_words: the relay's one pass over its text, with
   SQLWORDS_SESSION set for a savepoint statement too), from a client with no effects
   waiting for their commit and no statement with effects to replace, of a statement
   the prepared layer carries (or the unnamed one): nothing to note either. */
static inline int relay_session_plain_parse(const struct wp_client *c, const uint8_t *msg,
                                            size_t avail, uint32_t len, unsigned text_words)
{
    return avail >= len && len > 5 && !(text_words & SQLWORDS_SESSION) && !c->session.watching &&
           c->session.nstmts == 0 &&
           (msg[5] == '\0' || wp_rt.cfg->max_prepared_statements > 0 ||
            c->pool->settings.pool_mode == WP_MODE_SESSION);
}

static inline int relay_session_wants(const struct wp_client *c, uint8_t type, const uint8_t *msg,
                                      size_t avail, uint32_t len, unsigned text_words)
{
    if (type == 'Q')
        return !relay_session_plain_query(c, msg, avail, len, text_words);
    if (type == 'P')
        return !relay_session_plain_parse(c, msg, avail, len, text_words);
    return (type == 'B' || type == 'E') && (c->session.nstmts | c->session.nportals);
}

#endif
