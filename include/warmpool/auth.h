/*
 * auth — the auth file (PgBouncer's userlist.txt format) and password checks.
 *
 * A line is `"user" "secret"`; secret is a plaintext password, `md5` + 32 hex digits
 * (md5(password || user)), or a SCRAM secret `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`.
 * Quotes inside are doubled (""). Lines starting with ';' or '#' and blank lines are ignored.
 */
#ifndef WARMPOOL_AUTH_H
#define WARMPOOL_AUTH_H

#include <stddef.h>
#include <stdint.h>

enum wp_secret_kind { WP_SECRET_PLAIN, WP_SECRET_MD5, WP_SECRET_SCRAM };

struct wp_user_secret {
    char *user;
    char *secret;
    enum wp_secret_kind kind;
};

struct wp_userlist {
    struct wp_user_secret *entries;
    int n;
};

/* Returns 0, or -1 with "file:line: message" in err. */
int auth_userlist_load(const char *path, struct wp_userlist *out, char *err, size_t errlen);
/* The same from `len` bytes in memory (tests, fuzzing); `name` stands for the path. */
int auth_userlist_load_string(const char *name, const char *text, size_t len,
                              struct wp_userlist *out, char *err, size_t errlen);
void auth_userlist_free(struct wp_userlist *list);
const struct wp_user_secret *auth_userlist_find(const struct wp_userlist *list, const char *user);
/*
 * Can this entry ever log anyone in by password? NULL (no such user) and an empty secret
 * ("") cannot, whatever the method: every password check and the SCRAM exchange ask this.
 */
int auth_secret_usable(const struct wp_user_secret *secret);

enum wp_secret_kind auth_secret_kind(const char *secret);

/* "md5" + hex(md5(password || user)) into out[36]. */
void auth_md5_secret(const char *password, const char *user, char out[36]);

/*
 * Check a client's md5 PasswordMessage (`response`, "md5" + 32 hex) against a
 * plaintext or md5 secret with the 4-byte salt sent. 1 = match, 0 = no.
 * SCRAM secrets cannot verify md5 and return 0.
 */
int auth_md5_check(const struct wp_user_secret *secret, const uint8_t salt[4],
                   const char *response);

/*
 * Plaintext password check (auth_type = plain): constant-time compare / md5 compare; a SCRAM
 * secret is checked by deriving keys from the password with its salt, as PostgreSQL does.
 * An empty secret or password never matches.
 */
int auth_plain_check(const struct wp_user_secret *secret, const char *password);

/*
 * SCRAM keys for a secret: a SCRAM secret is parsed; a plaintext one is derived with a fresh
 * random 16-byte salt and 4096 iterations. md5 and empty secrets cannot do SCRAM: -1 (use
 * scram_mock_keys to fail the exchange without telling the client why).
 */
struct scram_keys;
int auth_scram_keys(const struct wp_user_secret *secret, struct scram_keys *out);

/* Fill buf with n cryptographically random bytes (OpenSSL RAND_bytes). 0 or -1. */
int auth_random(void *buf, size_t n);

#endif
