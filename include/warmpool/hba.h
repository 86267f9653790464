/*
 * hba — host-based access rules (auth_hba_file), a subset of PostgreSQL's pg_hba.conf.
 *
 * One rule a line: `TYPE DATABASE USER [ADDRESS] METHOD`.
 *   TYPE      local | host | hostssl | hostnossl
 *   DATABASE  all, or a comma-separated list of names ("quoted" names are literal)
 *   USER      all, or a comma-separated list of names
 *   ADDRESS   (not for local) all, or an IPv4/IPv6 address with an optional /prefix
 *   METHOD    trust | reject | md5 | scram-sha-256 | password | cert (hostssl only)
 * `#` starts a comment; blank lines are ignored. The first rule that matches decides.
 * Pure code: parsing and matching, no sockets, no global state.
 */
#ifndef WARMPOOL_HBA_H
#define WARMPOOL_HBA_H

#include <stddef.h>
#include <stdint.h>

enum hba_type { HBA_LOCAL, HBA_HOST, HBA_HOSTSSL, HBA_HOSTNOSSL };
enum hba_method { HBA_TRUST, HBA_REJECT, HBA_MD5, HBA_SCRAM, HBA_PASSWORD, HBA_CERT };

struct hba_rule {
    enum hba_type type;
    char **databases; /* NULL-terminated; NULL = all */
    char **users;     /* NULL-terminated; NULL = all */
    int any_address;  /* ADDRESS all (or a local rule) */
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network bytes, already masked */
    int prefix;       /* mask length in bits */
    enum hba_method method;
    int line;
};

struct wp_hba {
    struct hba_rule *rules;
    int n;
    int loaded; /* 0: no auth_hba_file, every client passes to auth_type */
};

/* Who is connecting: what a rule is matched against. */
struct hba_peer {
    int is_unix; /* unix socket (local rules) or TCP (host* rules) */
    int is_tls;  /* the connection runs TLS */
    int family;  /* AF_INET / AF_INET6 for TCP; 0 when unknown */
    uint8_t addr[16];
};

/* Rules from text; `name` is used in errors ("name:line: reason"). 0, or -1 with every
   error found in err, one per line. *out is only filled on success. */
int hba_parse(const char *text, const char *name, struct wp_hba *out, char *err, size_t errlen);
/* Rules from a file. 0, or -1 with "file:line: reason" (or "file: why") in err. */
int hba_load(const char *path, struct wp_hba *out, char *err, size_t errlen);
void hba_free(struct wp_hba *hba);

/* The peer of a client from its printable address ("unix", "10.1.2.3:5000",
   "::1:5000"). An IPv4-mapped IPv6 address is taken as the IPv4 one. 0, or -1 when
   the address is not understood (such a peer matches no host rule). */
int hba_peer_from_addr(const char *addr, int is_tls, struct hba_peer *out);

/* The first rule for this peer, database and user, or NULL (the client must be refused
   with SQLSTATE 28000). */
const struct hba_rule *hba_match(const struct wp_hba *hba, const struct hba_peer *peer,
                                 const char *database, const char *user);

/* The line of the first rule with this method, or 0 when no rule has it. */
int hba_first_line_with(const struct wp_hba *hba, enum hba_method method);

const char *hba_method_name(enum hba_method method);

#endif
