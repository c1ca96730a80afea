/* netaddr.h - network addresses as the core handles them, in one place: a peer's text and its
 * host and port, numeric addresses, CIDR lists (listener ACLs) and the per-source key that
 * throttles, budgets and log limits count by.
 * SPDX-License-Identifier: Apache-2.0
 *
 * One rule splits "host:port" text everywhere (peers, list files, configuration):
 *   "[2001:db8::1]:443"  bracketed IPv6 address and port
 *   "[2001:db8::1]"      bracketed IPv6 address, no port
 *   "2001:db8::1"        more than one ':' and no brackets: a bare IPv6 address, no port
 *   "198.51.100.7:80"    exactly one ':': host and port
 *   "dev.example.com"    no ':': a host without a port
 * Pure functions, no allocation except the CIDR list; unit-tested (tests/unit/test_netaddr.c). */
#ifndef MPSD_NETADDR_H
#define MPSD_NETADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Room for any address this file formats: "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535"
 * and for the host part alone (INET6_ADDRSTRLEN is 46). */
#define NETADDR_TEXT_MAX 56
#define NETADDR_HOST_MAX 46

/* Split text by the rule above. host gets the host without brackets, *port_r the port (0 when
 * the text has none). 0, or -EINVAL: empty host, unbalanced brackets, text after "]" other
 * than ":port", a port that is not 1 to 5 digits within 0..65535, or a host that does not fit. */
int netaddr_split(const char *text, char *host, size_t host_len, uint16_t *port_r);

/* A numeric IPv4 or IPv6 address (no brackets, no port) and a port into *ss. 0 or -EINVAL. */
int netaddr_parse(const char *host, uint16_t port, struct sockaddr_storage *ss);

/* "198.51.100.7:51234" or "[2001:db8::1]:443"; "unknown" for another family. IPv4-mapped IPv6
 * addresses are shown as IPv4, as every other function here treats them. */
void netaddr_format(const struct sockaddr *sa, char *out, size_t len);
/* The address alone, without brackets: "198.51.100.7", "2001:db8::1". */
void netaddr_host(const struct sockaddr *sa, char *out, size_t len);
uint16_t netaddr_port(const struct sockaddr *sa); /* 0 for another family */
socklen_t netaddr_len(const struct sockaddr *sa); /* the length to pass to bind/connect */

/* Who a connection or a login comes from, for per-source limits: an IPv4 address (also when
 * it arrives IPv4-mapped on an IPv6 socket) or an IPv6 address's /64, since one subscriber
 * usually holds a whole /64 and single addresses would not slow it down. family 0: unknown
 * (every unknown source shares one key). Compare with memcmp over the whole struct. */
struct netaddr_key {
    uint8_t family; /* AF_INET, AF_INET6 or 0 */
    uint8_t b[8];   /* IPv4: 4 bytes, IPv6: the first 8, the rest zero */
};
void netaddr_key(const struct sockaddr *sa, struct netaddr_key *k);
/* From a host text (no port, no brackets). 0, or -EINVAL (k is then the unknown key). */
int netaddr_key_parse(const char *host, struct netaddr_key *k);
uint32_t netaddr_key_hash(const struct netaddr_key *k);
/* "198.51.100.7", "2001:db8:1:2::/64" or "unknown". */
void netaddr_key_format(const struct netaddr_key *k, char *out, size_t len);

/* CIDR lists: "10.0.0.0/8 192.0.2.7, 2001:db8::/32 ::1" (blanks or commas between entries; a
 * bare address is a /32 or /128). Host bits below the prefix are ignored (10.1.2.3/8 is
 * 10.0.0.0/8). */
struct netaddr_cidr {
    uint8_t family, bits;
    uint8_t addr[16];
};
struct netaddr_cidrs {
    struct netaddr_cidr *v;
    size_t n;
};
/* Parse text into *l (emptied first; an empty text is an empty list). 0, or -1 with err =
 * "message naming the entry"; *l is then empty. */
int netaddr_cidrs_parse(const char *text, struct netaddr_cidrs *l, char *err, size_t errlen);
/* Does sa fall in an entry? IPv4-mapped IPv6 addresses match IPv4 entries. */
bool netaddr_cidrs_match(const struct netaddr_cidrs *l, const struct sockaddr *sa);
void netaddr_cidrs_free(struct netaddr_cidrs *l);

#endif
