/* authorized.h - the authorized-servers list: where devices may send alerts and open
 * direct-tcpip channels ([core] FilterUnauthorizedServers, AuthorizedServersList).
 * SPDX-License-Identifier: Apache-2.0
 *
 * The file has the reference MPS's format: one `host:port` per line, where host is an IPv4
 * address, an FQDN, or an IPv6 address in brackets (`[2001:db8::1]:162`); `#` starts a
 * comment, blank lines are ignored. A match is on the text the device asked for
 * (case-insensitive, no DNS lookup: an allowed name is then resolved and connected to, so the
 * list trusts DNS for its names) and the port; numeric addresses match in any spelling of the
 * same address. The list is immutable once loaded: a reload builds a new one. */
#ifndef MPSD_AUTHORIZED_H
#define MPSD_AUTHORIZED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct authorized_list;

/* Parse text (len bytes; name is used in messages). 0, or -1 with err = "name:line: message". */
int authorized_parse(const char *name, const char *text, size_t len,
                     struct authorized_list **l_r, char *err, size_t errlen);
/* Read and parse path; an empty path is an empty list. 0, or -1 with err (file:line). */
int authorized_load(const char *path, struct authorized_list **l_r, char *err, size_t errlen);
void authorized_free(struct authorized_list *l);
size_t authorized_count(const struct authorized_list *l); /* entries; 0 for NULL */

/* Is host:port on the list? A NULL list is empty. */
bool authorized_match(const struct authorized_list *l, const char *host, uint32_t port);
/* The filter's decision: with filtering off everything is allowed. */
bool authorized_allows(bool filter, const struct authorized_list *l, const char *host,
                       uint32_t port);

#endif
