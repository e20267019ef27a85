/* DOCKER_HOST parsing: unix:///path and tcp://host[:port], as the docker
 * client accepts them, minus the transports sbx does not speak (ssh, npipe). */
#include "engine_addr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sbx_engine_addr_clear (sbx_engine_addr_t *addr)
{
  free (addr->address);
  free (addr->socket_path);
  free (addr->base_url);
  memset (addr, 0, sizeof *addr);
}

static int
parse_unix (const char *path, sbx_engine_addr_t *out, const char **why)
{
  /* "unix://" alone means the default socket, as for the docker client. */
  if (*path == '\0')
    path = "/var/run/docker.sock";
  if (path[0] != '/')
    {
      *why = "a unix:// address needs an absolute socket path, as in unix:///var/run/docker.sock";
      return -1;
    }
  if (strlen (path) >= 108) /* sizeof sockaddr_un.sun_path */
    {
      *why = "the socket path is longer than a Unix socket address allows (107 bytes)";
      return -1;
    }
  for (const char *p = path; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      {
        *why = "the socket path contains control characters";
        return -1;
      }
  out->kind = SBX_ADDR_UNIX;
  out->socket_path = strdup (path);
  if (asprintf (&out->address, "unix://%s", path) < 0)
    out->address = NULL;
  out->base_url = strdup ("http://localhost");
  return out->socket_path && out->address && out->base_url ? 0 : -2;
}

static bool
host_char (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
         || c == '-' || c == '_';
}

static int
parse_tcp (const char *rest, bool tls, sbx_engine_addr_t *out, const char **why)
{
  const char *end = rest + strcspn (rest, "/?#");
  /* A trailing "/" is harmless; any other path, query or fragment is not
   * something sbx can honour. */
  if (*end != '\0' && strcmp (end, "/") != 0)
    {
      *why = "a tcp:// address takes only host and port, as in tcp://127.0.0.1:2375";
      return -1;
    }
  if (memchr (rest, '@', end - rest))
    {
      *why = "a tcp:// address cannot carry user credentials";
      return -1;
    }
  const char *host = rest, *host_end, *port = NULL;
  if (*rest == '[')
    {
      host_end = memchr (rest, ']', end - rest);
      if (host_end == NULL || host_end == rest + 1)
        {
          *why = "an IPv6 address must be written in brackets, as in tcp://[::1]:2375";
          return -1;
        }
      for (const char *p = rest + 1; p < host_end; p++)
        if (!(host_char (*p) || *p == ':' || *p == '%'))
          {
            *why = "the IPv6 address contains an invalid character";
            return -1;
          }
      host_end++;
      if (host_end < end)
        {
          if (*host_end != ':')
            {
              *why = "expected ':' and a port after the IPv6 address";
              return -1;
            }
          port = host_end + 1;
        }
    }
  else
    {
      host_end = memchr (rest, ':', end - rest);
      if (host_end)
        port = host_end + 1;
      else
        host_end = end;
      if (host_end == rest)
        {
          *why = "a tcp:// address needs a host name, as in tcp://127.0.0.1:2375";
          return -1;
        }
      for (const char *p = rest; p < host_end; p++)
        if (!host_char (*p))
          {
            *why = "the host name contains an invalid character";
            return -1;
          }
    }
  long portnum = tls ? 2376 : 2375;
  if (port)
    {
      if (port == end)
        {
          *why = "the port is empty";
          return -1;
        }
      portnum = 0;
      for (const char *p = port; p < end; p++)
        {
          if (*p < '0' || *p > '9' || portnum > 65535)
            {
              *why = "the port must be a number from 1 to 65535";
              return -1;
            }
          portnum = portnum * 10 + (*p - '0');
        }
      if (portnum < 1 || portnum > 65535)
        {
          *why = "the port must be a number from 1 to 65535";
          return -1;
        }
    }
  int hl = (int) (host_end - host);
  out->kind = SBX_ADDR_TCP;
  if (asprintf (&out->address, "tcp://%.*s:%ld", hl, host, portnum) < 0)
    out->address = NULL;
  if (asprintf (&out->base_url, "%s://%.*s:%ld", tls ? "https" : "http", hl, host, portnum) < 0)
    out->base_url = NULL;
  return out->address && out->base_url ? 0 : -2;
}

int
sbx_engine_addr_parse (const char *host, bool tls, sbx_engine_addr_t *out, const char **why)
{
  static const char unsupported[]
      = "sbx speaks to the engine over unix:// or tcp:// only, as in unix:///var/run/docker.sock";
  memset (out, 0, sizeof *out);
  *why = NULL;
  if (host == NULL || *host == '\0')
    host = SBX_ENGINE_DEFAULT_HOST;
  int r;
  if (strncmp (host, "unix://", 7) == 0)
    r = parse_unix (host + 7, out, why);
  else if (strncmp (host, "tcp://", 6) == 0)
    r = parse_tcp (host + 6, tls, out, why);
  else
    {
      *why = strstr (host, "://") ? unsupported : "expected unix:///path or tcp://host:port";
      r = -1;
    }
  if (r < 0)
    sbx_engine_addr_clear (out);
  return r;
}
