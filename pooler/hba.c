/*
 * hba — parses auth_hba_file rules and matches a connecting client against them
 * (include/warmpool/hba.h). Lines are split into fields on blanks outside double
 * quotes; list fields are split on commas outside quotes; a quoted item is a literal
 * name (so "all" names a database called all, as in pg_hba.conf).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "warmpool/hba.h"

#define HBA_MAX_FIELDS 5
#define HBA_MAX_FILE (4 * 1024 * 1024)

struct hba_errors {
    const char *name;
    char *err;
    size_t errlen, used;
    int count;
};

__attribute__((format(printf, 3, 4))) static void hba_report(struct hba_errors *e, int line,
                                                             const char *fmt, ...)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s:%d: ", e->name, line);
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    e->count++;
    if (!e->err || e->errlen == 0)
        return;
    int w = snprintf(e->err + e->used, e->errlen - e->used, "%s%s", e->used ? "\n" : "", msg);
    if (w > 0)
        e->used += (size_t)w < e->errlen - e->used ? (size_t)w : e->errlen - e->used - 1;
}

static void free_names(char **names)
{
    if (!names)
        return;
    for (char **p = names; *p; p++)
        free(*p);
    free(names);
}

static void free_rule(struct hba_rule *r)
{
    free_names(r->databases);
    free_names(r->users);
}

void hba_free(struct wp_hba *hba)
{
    for (int i = 0; i < hba->n; i++)
        free_rule(&hba->rules[i]);
    free(hba->rules);
    memset(hba, 0, sizeof *hba);
}

/* Split a line (comment already cut) into at most max fields; -1 when there are more
   or a quote is not closed. Fields point into `line`, which is NUL-split. */
static int split_fields(char *line, char **fields, int max, const char **why)
{
    int n = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (!*p)
            return n;
        if (n == max) {
            *why = "too many fields (expected TYPE DATABASE USER [ADDRESS] METHOD)";
            return -1;
        }
        fields[n++] = p;
        int quoted = 0;
        while (*p && (quoted || (*p != ' ' && *p != '\t' && *p != '\r'))) {
            if (*p == '"')
                quoted = !quoted;
            p++;
        }
        if (quoted) {
            *why = "unterminated quoted name";
            return -1;
        }
        if (*p)
            *p++ = '\0';
    }
}

/* Cut a '#' comment that is not inside quotes. */
static void cut_comment(char *line)
{
    int quoted = 0;
    for (char *p = line; *p; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (*p == '#' && !quoted) {
            *p = '\0';
            return;
        }
    }
}

/* One list item, quotes removed ("" inside quotes is a literal quote). */
static char *take_item(const char *start, const char *end, int *quoted)
{
    char *out = malloc((size_t)(end - start) + 1), *o = out;
    int inside = 0;
    if (!out)
        return NULL;
    *quoted = 0;
    for (const char *p = start; p < end; p++) {
        if (*p != '"') {
            *o++ = *p;
        } else if (inside && p + 1 < end && p[1] == '"') {
            *o++ = '"';
            p++;
        } else {
            inside = !inside;
            *quoted = 1;
        }
    }
    *o = '\0';
    return out;
}

/* "a,b,\"c d\"" → names; sets *all for an unquoted `all` (then returns NULL). */
static char **parse_names(const char *field, int *all, const char **why)
{
    size_t cap = 2;
    for (const char *p = field; *p; p++)
        cap += *p == ',';
    char **names = calloc(cap, sizeof *names);
    size_t n = 0;
    *all = 0;
    if (!names) {
        *why = "out of memory";
        return NULL;
    }
    const char *p = field;
    while (*p) {
        const char *end = p;
        int quoted = 0;
        while (*end && (quoted || *end != ',')) {
            quoted ^= *end == '"';
            end++;
        }
        int was_quoted;
        char *item = take_item(p, end, &was_quoted);
        if (!item || (!*item && !was_quoted)) {
            free(item);
            free_names(names);
            *why = item ? "empty name in list" : "out of memory";
            return NULL;
        }
        if (!was_quoted && strcmp(item, "all") == 0)
            *all = 1;
        names[n++] = item;
        p = *end ? end + 1 : end;
        if (*end && !*p) {
            free_names(names);
            *why = "empty name in list";
            return NULL;
        }
    }
    if (*all) {
        free_names(names);
        return NULL;
    }
    return names;
}

static int parse_type(const char *s, enum hba_type *out)
{
    static const char *const names[] = {"local", "host", "hostssl", "hostnossl"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum hba_type)i;
            return 0;
        }
    return -1;
}

static const char *const method_names[] = {"trust",         "reject",   "md5",
                                           "scram-sha-256", "password", "cert"};

int hba_first_line_with(const struct wp_hba *hba, enum hba_method method)
{
    for (int i = 0; i < hba->n; i++)
        if (hba->rules[i].method == method)
            return hba->rules[i].line;
    return 0;
}

const char *hba_method_name(enum hba_method method)
{
    return (unsigned)method < 6 ? method_names[method] : "?";
}

static int parse_method(const char *s, enum hba_method *out)
{
    for (int i = 0; i < 6; i++)
        if (strcmp(s, method_names[i]) == 0) {
            *out = (enum hba_method)i;
            return 0;
        }
    return -1;
}

static void mask_bytes(uint8_t *addr, int nbytes, int prefix)
{
    for (int i = 0; i < nbytes; i++) {
        int bits = prefix - 8 * i;
        uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
        addr[i] &= mask;
    }
}

/* "all", "10.0.0.0/8", "::1/128", "192.168.1.7" (a single host). */
static int parse_address(const char *s, struct hba_rule *r, const char **why)
{
    if (strcmp(s, "all") == 0) {
        r->any_address = 1;
        return 0;
    }
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
    if (hlen == 0 || hlen >= sizeof host) {
        *why = "invalid address (expected all or a CIDR such as 10.0.0.0/8 or ::1/128)";
        return -1;
    }
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    memset(r->addr, 0, sizeof r->addr);
    if (inet_pton(AF_INET, host, r->addr) == 1)
        r->family = AF_INET;
    else if (inet_pton(AF_INET6, host, r->addr) == 1)
        r->family = AF_INET6;
    else {
        *why = "invalid address (expected all or a CIDR such as 10.0.0.0/8 or ::1/128)";
        return -1;
    }
    int max_prefix = r->family == AF_INET ? 32 : 128;
    r->prefix = max_prefix;
    if (slash) {
        const char *d = slash + 1;
        int prefix = 0;
        if (!*d || strlen(d) > 3) {
            *why = "invalid CIDR prefix length";
            return -1;
        }
        for (; *d; d++) {
            if (!isdigit((unsigned char)*d)) {
                *why = "invalid CIDR prefix length";
                return -1;
            }
            prefix = prefix * 10 + (*d - '0');
        }
        if (prefix > max_prefix) {
            *why = "CIDR prefix length too large for the address family";
            return -1;
        }
        r->prefix = prefix;
    }
    mask_bytes(r->addr, max_prefix / 8, r->prefix);
    return 0;
}

/* Fields of one non-empty line → rule. */
static int parse_rule(char **f, int n, struct hba_rule *r, const char **why)
{
    memset(r, 0, sizeof *r);
    if (parse_type(f[0], &r->type) < 0) {
        *why = "invalid connection type (expected local, host, hostssl or hostnossl)";
        return -1;
    }
    int want = r->type == HBA_LOCAL ? 4 : 5;
    if (n != want) {
        *why = r->type == HBA_LOCAL ? "local rules take TYPE DATABASE USER METHOD"
                                    : "host rules take TYPE DATABASE USER ADDRESS METHOD";
        return -1;
    }
    int all;
    r->databases = parse_names(f[1], &all, why);
    if (!r->databases && !all)
        return -1;
    r->users = parse_names(f[2], &all, why);
    if (!r->users && !all)
        return -1;
    if (r->type == HBA_LOCAL)
        r->any_address = 1;
    else if (parse_address(f[3], r, why) < 0)
        return -1;
    if (parse_method(f[n - 1], &r->method) < 0) {
        *why = "invalid method (expected trust, reject, md5, scram-sha-256, password or cert)";
        return -1;
    }
    /* As in PostgreSQL: elsewhere no certificate can have been sent, the rule would
       only ever refuse, and that is better said when the file is read. */
    if (r->method == HBA_CERT && r->type != HBA_HOSTSSL) {
        *why = "cert authentication is only supported on hostssl lines";
        return -1;
    }
    return 0;
}

static int add_rule(struct wp_hba *hba, const struct hba_rule *r)
{
    struct hba_rule *v = realloc(hba->rules, (size_t)(hba->n + 1) * sizeof *v);
    if (!v)
        return -1;
    hba->rules = v;
    hba->rules[hba->n++] = *r;
    return 0;
}

/* One physical line (modified in place). */
static void parse_line(char *line, int lineno, struct wp_hba *hba, struct hba_errors *e)
{
    char *fields[HBA_MAX_FIELDS];
    const char *why = NULL;
    cut_comment(line);
    int n = split_fields(line, fields, HBA_MAX_FIELDS, &why);
    if (n == 0)
        return;
    struct hba_rule r;
    if (n < 0 || parse_rule(fields, n, &r, &why) < 0) {
        if (n > 0)
            free_rule(&r);
        hba_report(e, lineno, "%s", why);
        return;
    }
    r.line = lineno;
    if (add_rule(hba, &r) < 0) {
        free_rule(&r);
        hba_report(e, lineno, "out of memory");
    }
}

int hba_parse(const char *text, const char *name, struct wp_hba *out, char *err, size_t errlen)
{
    struct hba_errors e = {.name = name, .err = err, .errlen = errlen};
    struct wp_hba hba = {0};
    char *copy = strdup(text);
    if (err && errlen)
        err[0] = '\0';
    if (!copy) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -1;
    }
    int lineno = 0;
    for (char *line = copy; line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        parse_line(line, ++lineno, &hba, &e);
        line = nl ? nl + 1 : NULL;
    }
    free(copy);
    if (e.count > 0) {
        hba_free(&hba);
        return -1;
    }
    hba.loaded = 1;
    *out = hba;
    return 0;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(HBA_MAX_FILE + 1);
    size_t n = text ? fread(text, 1, HBA_MAX_FILE + 1, fp) : 0;
    int failed = ferror(fp);
    fclose(fp);
    if (!text || failed || n > HBA_MAX_FILE || memchr(text, '\0', n)) {
        snprintf(err, errlen, "%s: %s", path,
                 !text              ? "out of memory"
                 : failed           ? "read error"
                 : n > HBA_MAX_FILE ? "file too large (over 4MB)"
                                    : "file contains a NUL byte");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

int hba_load(const char *path, struct wp_hba *out, char *err, size_t errlen)
{
    char *text = read_file(path, err, errlen);
    if (!text)
        return -1;
    int rc = hba_parse(text, path, out, err, errlen);
    free(text);
    return rc;
}

int hba_peer_from_addr(const char *addr, int is_tls, struct hba_peer *out)
{
    memset(out, 0, sizeof *out);
    out->is_tls = is_tls;
    if (strcmp(addr, "unix") == 0) {
        out->is_unix = 1;
        return 0;
    }
    char host[64];
    const char *colon = strrchr(addr, ':');
    size_t hlen = colon ? (size_t)(colon - addr) : strlen(addr);
    if (hlen == 0 || hlen >= sizeof host)
        return -1;
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, host, out->addr) != 1)
        return -1;
    static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out->addr, v4_mapped, sizeof v4_mapped) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = AF_INET;
    } else {
        out->family = AF_INET6;
    }
    return 0;
}

static int name_listed(char *const *names, const char *name)
{
    if (!names)
        return 1;
    for (char *const *p = names; *p; p++)
        if (strcmp(*p, name) == 0)
            return 1;
    return 0;
}

static int address_matches(const struct hba_rule *r, const struct hba_peer *peer)
{
    if (r->any_address)
        return peer->family != 0;
    if (peer->family != r->family)
        return 0;
    uint8_t masked[16];
    int nbytes = r->family == AF_INET ? 4 : 16;
    memcpy(masked, peer->addr, sizeof masked);
    mask_bytes(masked, nbytes, r->prefix);
    return memcmp(masked, r->addr, (size_t)nbytes) == 0;
}

static int connection_matches(const struct hba_rule *r, const struct hba_peer *peer)
{
    switch (r->type) {
    case HBA_LOCAL:
        return peer->is_unix;
    case HBA_HOST:
        return !peer->is_unix && address_matches(r, peer);
    case HBA_HOSTSSL:
        return !peer->is_unix && peer->is_tls && address_matches(r, peer);
    case HBA_HOSTNOSSL:
        return !peer->is_unix && !peer->is_tls && address_matches(r, peer);
    }
    return 0;
}

const struct hba_rule *hba_match(const struct wp_hba *hba, const struct hba_peer *peer,
                                 const char *database, const char *user)
{
    for (int i = 0; i < hba->n; i++) {
        const struct hba_rule *r = &hba->rules[i];
        if (connection_matches(r, peer) && name_listed(r->databases, database) &&
            name_listed(r->users, user))
            return r;
    }
    return NULL;
}
