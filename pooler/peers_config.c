/*
 * peers_config — parse [peers] lines (include/warmpool/peers_config.h). The value is a
 * small libpq-like connection string: key=value pairs, a value may be 'quoted' and a
 * backslash escapes the next character. Only host, port and pool_size are known, as in
 * PgBouncer; anything else is an error rather than silently ignored.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "warmpool/cancel_key.h"
#include "warmpool/peers_config.h"

#define WORD_MAX 1024

/* Whole-string decimal in [lo, hi]; -1 otherwise. */
static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* One "key=value" from *pp into key and val; 1 found, 0 at the end, -1 malformed. */
static int next_pair(const char **pp, char *key, char *val, const char **why)
{
    const char *p = *pp;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p)
        return 0;
    size_t k = 0;
    while (*p && *p != '=' && !isspace((unsigned char)*p) && k < WORD_MAX - 1)
        key[k++] = *p++;
    key[k] = '\0';
    while (isspace((unsigned char)*p))
        p++;
    if (*p != '=' || k == 0) {
        *why = k ? "expected key=value" : "missing keyword before \"=\"";
        return -1;
    }
    p++;
    while (isspace((unsigned char)*p))
        p++;
    int quoted = *p == '\'';
    size_t v = 0;
    p += quoted;
    while (*p && (quoted ? *p != '\'' : !isspace((unsigned char)*p)) && v < WORD_MAX - 1) {
        if (*p == '\\' && p[1])
            p++;
        val[v++] = *p++;
    }
    val[v] = '\0';
    if (v == WORD_MAX - 1) {
        *why = "value too long";
        return -1;
    }
    if (quoted && *p++ != '\'') {
        *why = "unterminated quoted value (missing closing ')";
        return -1;
    }
    *pp = p;
    return 1;
}

static int take_pair(struct wp_peer_config *peer, const char *key, const char *val, char *why,
                     size_t whylen)
{
    long v;
    if (strcmp(key, "host") == 0) {
        free(peer->host);
        peer->host = strdup(val);
        if (!peer->host) {
            snprintf(why, whylen, "out of memory");
            return -1;
        }
    } else if (strcmp(key, "port") == 0) {
        if (parse_int(val, 1, 65535, &v) < 0) {
            snprintf(why, whylen, "peer %d: port must be a number from 1 to 65535", peer->id);
            return -1;
        }
        peer->port = (int)v;
    } else if (strcmp(key, "pool_size") == 0) {
        if (parse_int(val, 1, INT_MAX, &v) < 0) {
            snprintf(why, whylen, "peer %d: pool_size must be a number of at least 1", peer->id);
            return -1;
        }
        peer->pool_size = (int)v;
    } else {
        snprintf(why, whylen, "peer %d: unknown key \"%.64s\" (expected host, port or pool_size)",
                 peer->id, key);
        return -1;
    }
    return 0;
}

static int parse_value(struct wp_peer_config *peer, const char *value, char *why, size_t whylen)
{
    char key[WORD_MAX], val[WORD_MAX];
    const char *p = value, *msg = NULL;
    int rc;
    while ((rc = next_pair(&p, key, val, &msg)) > 0)
        if (take_pair(peer, key, val, why, whylen) < 0)
            return -1;
    if (rc < 0) {
        snprintf(why, whylen, "peer %d: %s", peer->id, msg);
        return -1;
    }
    if (!peer->host || !*peer->host) {
        snprintf(why, whylen, "peer %d: host is missing", peer->id);
        return -1;
    }
    return 0;
}

int peers_config_add(struct wp_peers *peers, const char *name, const char *value, const char *file,
                     int line, char *why, size_t whylen)
{
    long id;
    if (parse_int(name, 1, CANCEL_KEY_MAX_PEER_ID, &id) < 0) {
        snprintf(why, whylen, "peer id \"%.64s\" must be a number from 1 to %d", name,
                 CANCEL_KEY_MAX_PEER_ID);
        return -1;
    }
    const struct wp_peer_config *prev = peers_config_find(peers, (int)id);
    if (prev) {
        snprintf(why, whylen, "duplicate peer %ld (first defined on %s:%d)", id, prev->file,
                 prev->line);
        return -1;
    }
    struct wp_peer_config peer = {
        .id = (int)id, .port = PEER_DEFAULT_PORT, .pool_size = -1, .file = file, .line = line};
    if (parse_value(&peer, value, why, whylen) < 0) {
        free(peer.host);
        return -1;
    }
    struct wp_peer_config *v = realloc(peers->v, (size_t)(peers->n + 1) * sizeof *v);
    if (!v) {
        free(peer.host);
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    /* kept in id order: SHOW PEERS lists them so, as PgBouncer does */
    int at = peers->n;
    while (at > 0 && v[at - 1].id > peer.id)
        at--;
    memmove(&v[at + 1], &v[at], (size_t)(peers->n - at) * sizeof *v);
    v[at] = peer;
    peers->v = v;
    peers->n++;
    return 0;
}

const struct wp_peer_config *peers_config_find(const struct wp_peers *peers, int id)
{
    for (int i = 0; i < peers->n; i++)
        if (peers->v[i].id == id)
            return &peers->v[i];
    return NULL;
}

void peers_config_free(struct wp_peers *peers)
{
    for (int i = 0; i < peers->n; i++) {
        free(peers->v[i].host);
        free(peers->v[i].addrs);
    }
    free(peers->v);
    peers->v = NULL;
    peers->n = 0;
}
