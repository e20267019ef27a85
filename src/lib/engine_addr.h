/* DOCKER_HOST parsing. Pure: no I/O, no environment access. */
#ifndef SBX_ENGINE_ADDR_H
#define SBX_ENGINE_ADDR_H

#include <stdbool.h>

#define SBX_ENGINE_DEFAULT_HOST "unix:///var/run/docker.sock"

enum sbx_engine_addr_kind
{
  SBX_ADDR_UNIX,
  SBX_ADDR_TCP
};

typedef struct sbx_engine_addr
{
  enum sbx_engine_addr_kind kind;
  char *address;     /* normalised, for messages: "unix:///p" or "tcp://h:port" */
  char *socket_path; /* unix: the socket's path */
  char *base_url;    /* what requests start with: "http://localhost", "https://h:2376" */
} sbx_engine_addr_t;

/* Parses HOST (a DOCKER_HOST value; NULL or "" means the default). TLS says
 * whether DOCKER_TLS_VERIFY is set: tcp:// then uses https and defaults to
 * port 2376 instead of 2375. Returns 0, or -1 with *WHY (static text) when
 * HOST is malformed, or -2 when out of memory. */
int sbx_engine_addr_parse (const char *host, bool tls, sbx_engine_addr_t *out, const char **why);
void sbx_engine_addr_clear (sbx_engine_addr_t *addr);

#endif
