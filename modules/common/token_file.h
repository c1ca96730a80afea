/* token_file.h - bearer tokens from a file (TokenFile of admin_http and ws_relay). Compiled into
 * each module that takes tokens: modules link nothing from one another.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The file holds one token per line, "NAME SCOPES SHA256", blank-separated; '#' starts a
 * comment line, blank lines are ignored:
 *   NAME    a label for log lines (no blanks; not secret)
 *   SCOPES  read, relay or admin, several joined with commas ("read,relay"); admin implies
 *           the other two
 *   SHA256  the token's SHA-256 in hex, 64 digits: printf %s "$TOKEN" | sha256sum
 * Only digests are kept, in the file and in memory, so reading either does not give a token
 * away. Loop thread (no locking); load a new table and swap it in to reload. */
#ifndef MPSD_TOKEN_FILE_H
#define MPSD_TOKEN_FILE_H

#include <stddef.h>

enum token_scope { TOKEN_READ = 1u, TOKEN_RELAY = 2u, TOKEN_ADMIN = 4u };

struct token_file;

/* 0 with *tf_r, or -errno (-EINVAL: a bad line) with "path:line: why" (or "path: why") in
 * err[0..errlen). A missing file is an error: the admin asked for tokens. */
int token_file_load(const char *path, struct token_file **tf_r, char *err, size_t errlen);
void token_file_free(struct token_file *tf);
size_t token_file_count(const struct token_file *tf);
/* The scopes of token[0..len) (admin expanded to read|relay|admin), or 0 when it is unknown.
 * *name_r (may be NULL) receives its label, valid until the table is freed. Compares against
 * every entry in constant time, so timing says nothing about which digest nearly matched. */
unsigned token_file_check(const struct token_file *tf, const char *token, size_t len,
                          const char **name_r);

#endif
