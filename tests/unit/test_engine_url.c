/* DOCKER_HOST parsing and apt source lists (pure parsers, no engine needed). */
#include "tap.h"

#include "../../src/lib/apt_sources.h"
#include "../../src/lib/engine_addr.h"

static void
addr_ok (const char *host, bool tls, int kind, const char *address, const char *socket,
         const char *base)
{
  sbx_engine_addr_t a;
  const char *why = NULL;
  int r = sbx_engine_addr_parse (host, tls, &a, &why);
  if (!ok (r == 0, "parse %s%s", host ? host : "(null)", tls ? " (tls)" : ""))
    {
      diag ("why: %s", why ? why : "(none)");
      return;
    }
  is_int (a.kind, kind, "  kind");
  is_str (a.address, address, "  address");
  if (socket)
    is_str (a.socket_path, socket, "  socket path");
  else
    ok (a.socket_path == NULL, "  no socket path");
  is_str (a.base_url, base, "  base url");
  sbx_engine_addr_clear (&a);
}

static void
addr_bad (const char *host)
{
  sbx_engine_addr_t a;
  const char *why = NULL;
  int r = sbx_engine_addr_parse (host, false, &a, &why);
  ok (r == -1 && why != NULL && a.address == NULL, "reject %s (%s)", host, why ? why : "-");
}

static void
mirror (int deb822, const char *text, const char *want, const char *name)
{
  char *uri = NULL;
  int r = deb822 ? sbx_apt_mirror_deb822 (text, "bookworm", &uri)
                 : sbx_apt_mirror_one_line (text, "bookworm", &uri);
  if (want)
    {
      is_int (r, 1, "%s: found", name);
      is_str (uri, want, "%s: uri", name);
    }
  else
    ok (r == 0 && uri == NULL, "%s: none", name);
  free (uri);
}

int
main (void)
{
  const int U = SBX_ADDR_UNIX, T = SBX_ADDR_TCP;
  addr_ok (NULL, false, U, "unix:///var/run/docker.sock", "/var/run/docker.sock",
           "http://localhost");
  addr_ok ("", false, U, "unix:///var/run/docker.sock", "/var/run/docker.sock", "http://localhost");
  addr_ok ("unix://", false, U, "unix:///var/run/docker.sock", "/var/run/docker.sock",
           "http://localhost");
  addr_ok ("unix:///run/user/1000/docker.sock", true, U, "unix:///run/user/1000/docker.sock",
           "/run/user/1000/docker.sock", "http://localhost");
  addr_ok ("tcp://127.0.0.1:2375", false, T, "tcp://127.0.0.1:2375", NULL, "http://127.0.0.1:2375");
  addr_ok ("tcp://docker.example:2376/", true, T, "tcp://docker.example:2376", NULL,
           "https://docker.example:2376");
  addr_ok ("tcp://engine", false, T, "tcp://engine:2375", NULL, "http://engine:2375");
  addr_ok ("tcp://engine", true, T, "tcp://engine:2376", NULL, "https://engine:2376");
  addr_ok ("tcp://[::1]:2375", false, T, "tcp://[::1]:2375", NULL, "http://[::1]:2375");
  addr_ok ("tcp://[fe80::1]", false, T, "tcp://[fe80::1]:2375", NULL, "http://[fe80::1]:2375");

  addr_bad ("unix://var/run/docker.sock");
  addr_bad ("tcp://");
  addr_bad ("tcp://:2375");
  addr_bad ("tcp://host:");
  addr_bad ("tcp://host:0");
  addr_bad ("tcp://host:65536");
  addr_bad ("tcp://host:12x");
  addr_bad ("tcp://host:2375/api");
  addr_bad ("tcp://host:2375?x=1");
  addr_bad ("tcp://user@host:2375");
  addr_bad ("tcp://ho st:2375");
  addr_bad ("tcp://[::1");
  addr_bad ("tcp://[]:2375");
  addr_bad ("tcp://[::1]x");
  addr_bad ("ssh://user@host");
  addr_bad ("npipe:////./pipe/docker_engine");
  addr_bad ("/var/run/docker.sock");
  addr_bad ("localhost:2375");
  addr_bad ("unix:///tmp/\x01sock");
  {
    char longpath[200] = "unix:///";
    memset (longpath + 8, 'a', 150);
    longpath[158] = '\0';
    addr_bad (longpath);
  }

  /* One-line format. */
  mirror (0, "deb http://deb.debian.org/debian bookworm main\n", "http://deb.debian.org/debian",
          "plain");
  mirror (0,
          "# deb http://commented.example/debian bookworm main\n"
          "deb-src http://src.example/debian bookworm main\n"
          "deb http://security.debian.org/debian-security bookworm-security main\n"
          "deb http://deb.debian.org/debian bookworm-updates main\n"
          "  deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian/ "
          "bookworm main contrib # trailing comment\n",
          "http://mirror.example/debian", "options, comments, other suites");
  mirror (0, "deb [ arch=amd64 ] https://m.example/debian bookworm main",
          "https://m.example/debian", "spaced options, no final newline");
  mirror (0,
          "deb [enabled=no] http://off.example/debian bookworm main\n"
          "deb cdrom:[Debian]/ bookworm main\n"
          "deb file:/srv/mirror bookworm main\n",
          "file:/srv/mirror", "disabled and cdrom entries skipped");
  mirror (0, "deb http://deb.debian.org/debian bullseye main\n", NULL, "other release");
  mirror (0, "deb http://x.example/debian\n", NULL, "incomplete line");
  mirror (0, "", NULL, "empty");

  /* deb822 format. */
  mirror (1,
          "Types: deb\n"
          "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
          "URIs: http://deb.debian.org/debian\n"
          "Suites: bookworm bookworm-updates\n"
          "Components: main\n"
          "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
          "\n"
          "Types: deb\n"
          "URIs: http://deb.debian.org/debian-security\n"
          "Suites: bookworm-security\n"
          "Components: main\n",
          "http://deb.debian.org/debian", "Debian's default file");
  mirror (1,
          "Types: deb\n"
          "URIs: http://security.example/debian-security\n"
          "Suites: bookworm-security\n"
          "Components: main\n"
          "\n"
          "Types: deb-src deb\n"
          "URIs: http://m.example/debian/\n"
          "Suites: bookworm-updates\n"
          " bookworm\n"
          "Components: main\n"
          "Signed-By:\n"
          " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
          " .\n"
          " mQINBFyUGX8BEADk bookworm\n"
          " -----END PGP PUBLIC KEY BLOCK-----\n",
          "http://m.example/debian", "continuation lines and an embedded key");
  mirror (1,
          "Types: deb\n"
          "URIs: http://off.example/debian\n"
          "Suites: bookworm\n"
          "Enabled: no\n"
          "\n"
          "types: deb\n"
          "uris: mirror+file:/etc/apt/mirrors.txt https://on.example/debian\n"
          "suites: bookworm\n",
          "https://on.example/debian", "Enabled: no skipped, lowercase fields, first usable URI");
  mirror (1,
          "Types: deb-src\n"
          "URIs: http://src.example/debian\n"
          "Suites: bookworm\n",
          NULL, "deb-src only");
  mirror (1,
          "Types: deb\n"
          "URIs: http://x.example/debian\n"
          "Suites: bookworm-backports\n"
          "# bookworm\n"
          " trixie\n",
          NULL, "a commented suite does not count");
  mirror (1, "Types: deb\nSuites: bookworm\n", NULL, "no URIs");
  mirror (1,
          "Types: deb\r\n"
          "URIs: http://crlf.example/debian\r\n"
          "Suites: bookworm\r\n",
          "http://crlf.example/debian", "CRLF line ends");

  return done_testing ();
}
