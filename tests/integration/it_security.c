/* Secure defaults and isolation: capabilities, no-new-privileges, limits,
 * network, sandbox-to-sandbox isolation, and the agent's private channel. */
#include "helpers.h"

/* A connection out to Debian's mirror (reachable from containers on the
 * test machines): "connected", or the exception that stopped it. */
static const char *net_probe
    = "python3 -c \"import socket\n"
      "try:\n"
      "    socket.create_connection(('deb.debian.org', 80), 5).close(); print('connected')\n"
      "except OSError as e:\n"
      "    print(type(e).__name__)\"";

static void
test_defaults (sbx_sandbox_t *sb)
{
  /* CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID NET_BIND_SERVICE */
  is_str (
      run (sb, "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '", NULL),
      "CapEff: 00000000000004fb\nCapBnd: 00000000000004fb\nNoNewPrivs: 1\n",
      "capabilities are cut to the documented set, no-new-privileges is on");
  is_str (
      run (sb, "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max", NULL),
      "512\n", "pids limit 512");
  is_str (run (sb,
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
               "cat /sys/fs/cgroup/memory.max",
               NULL),
          "1073741824\n", "memory limit 1 GiB");
  is_str (run (sb, "ls /sys/class/net", NULL), "lo\n", "network none: only loopback");
  is_str (run (sb,
               "dd if=/dev/zero of=/.sbx/run/fill bs=1k count=1000 2>&1 | grep -c "
               "'Read-only'; ls /.sbx/run",
               NULL),
          "1\nagent.sock\n", "the agent's folder, shared with the host, is read-only inside");
  is_str (run (sb, net_probe, NULL), "gaierror\n",
          "network none: no connection out (no name even)");
  /* Without a storage quota, the agent caps files at the disk limit. */
  is_str (run (sb, "cat /proc/1/cmdline | tr '\\0' ' '", NULL),
          sbx_sandbox_notice (sb) ? "/.sbx/agent --workdir /workspace --max-file-size 10737418240 "
                                  : "/.sbx/agent --workdir /workspace ",
          "the agent is PID 1");
  /* An orphan, left to the agent when its parent exits, is reaped once it
     ends: its /proc entry goes (a zombie keeps it). */
  is_str (run (sb,
               "sh -c 'sleep 0.2 & echo $! > /tmp/orphan; exec true'; p=$(cat /tmp/orphan); "
               "for i in $(seq 100); do [ -e /proc/$p ] || { echo reaped; exit; }; sleep 0.1; "
               "done; grep State /proc/$p/status",
               NULL),
          "reaped\n", "an orphan is reaped by the agent, no zombie left");
  is_str (run (sb, "grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l", NULL), "0\n",
          "no zombies are left behind");
}

/* The probe that fails under network none works on the bridge network, so
 * its failure there is the network mode's doing. */
static void
test_bridge (void)
{
  sbx_options_t *o = test_options ();
  sbx_options_set_network (o, "bridge", NULL);
  sbx_sandbox_t *sb = start_sandbox (o);
  if (!ok (sb != NULL, "a sandbox on the bridge network"))
    return;
  is_str (run (sb, net_probe, NULL), "connected\n", "network bridge: the same probe connects");
  remove_sandbox (sb);
}

static void
test_limits (void)
{
  sbx_options_t *o = test_options ();
  sbx_options_set_memory (o, 64LL << 20, NULL);
  sbx_options_set_pids (o, 64, NULL);
  sbx_sandbox_t *sb = start_sandbox (o);
  if (!ok (sb != NULL, "sandbox with small limits"))
    return;
  sbx_exec_opts_t eo;
  sbx_exec_result_t res;
  sbx_error_t *err = NULL;
  sbx_exec_opts_init (&eo);
  if (check_ok (sbx_exec (sb, "python3 -c 'a = bytearray(400 * 1024 * 1024); print(len(a))'", &eo,
                          &res, &err),
                &err, "a command that exceeds the memory limit"))
    {
      ok (res.oom_killed, "the result says it was killed for memory");
      is_int (res.exit_code, 137, "killed by SIGKILL");
    }
  sbx_exec_result_free (&res);

  eo.timeout = 4;
  double t0 = now_s ();
  err = NULL;
  if (check_ok (sbx_exec (sb, "bomb() { bomb | bomb & }; bomb", &eo, &res, &err), &err,
                "a fork bomb"))
    ok (now_s () - t0 < 30, "is held by the pids limit and ends");
  sbx_exec_result_free (&res);
  /* The tree kill may need a moment while the bomb is still forking. */
  const char *after = NULL;
  for (int i = 0; i < 20; i++)
    {
      after = run (sb, "echo still-works", NULL);
      if (after && strcmp (after, "still-works\n") == 0)
        break;
      usleep (250000);
    }
  is_str (after, "still-works\n", "the sandbox still answers after the bomb");
  remove_sandbox (sb);
}

static void
test_isolation (sbx_sandbox_t *a)
{
  sbx_sandbox_t *b = start_sandbox (test_options ());
  if (!ok (b != NULL, "a second sandbox"))
    return;
  sbx_error_t *err = NULL;
  check_ok (sbx_write (a, "/workspace/secret.txt", "A's data", 8, &err), &err, "A writes a file");
  is_str (run (a, "cat /workspace/secret.txt", NULL), "A's data", "A sees it");
  bool exists = true;
  err = NULL;
  check_ok (sbx_exists (b, "/workspace/secret.txt", &exists, &err), &err, "exists in B");
  ok (!exists, "B cannot see A's files");
  is_str (run (b, "ls /.sbx/run", NULL), "agent.sock\n", "B sees only its own agent folder");
  char *marker = NULL;
  check_ok (sbx_bg_start (a, "exec sleep 12345", NULL, &marker, &err), &err,
            "A starts a marker process");
  const char *count_marker = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done "
                             "2>/dev/null | grep -c 'sleep 1234[5]'";
  is_str (run (a, count_marker, NULL), "1\n", "A sees its own marker process");
  is_str (run (b, count_marker, NULL), "0\n", "B cannot see A's processes");
  if (marker)
    check_ok (sbx_bg_kill (a, marker, &err), &err, "A ends it");
  free (marker);
  remove_sandbox (b);
}

/* A process inside the sandbox connects to the agent's socket and sends a
 * valid HELLO frame: it must get nothing back. */
static const char *drive_script
    = "import socket, struct\n"
      "s = socket.socket(socket.AF_UNIX)\n"
      "s.connect('/.sbx/run/agent.sock')\n"
      "field = bytes([1]) + struct.pack('>I', 8) + struct.pack('>q', 1)\n"
      "body = bytes([1]) + field\n"
      "s.settimeout(3)\n"
      "try:\n"
      "    s.sendall(struct.pack('>I', len(body)) + body)\n"
      "    data = s.recv(100)\n"
      "    print('refused' if data == b'' else 'ANSWERED %r' % data)\n"
      "except (ConnectionResetError, BrokenPipeError):\n"
      "    print('refused')\n"
      "except socket.timeout:\n"
      "    print('TIMEOUT')\n";

static void
test_agent_channel (sbx_sandbox_t *sb)
{
  sbx_error_t *err = NULL;
  check_ok (sbx_write (sb, "/tmp/drive.py", drive_script, strlen (drive_script), &err), &err,
            "a script that talks to the agent's socket");
  is_str (run (sb, "python3 /tmp/drive.py", NULL), "refused\n",
          "a process in the sandbox cannot drive the agent");
  is_str (run (sb,
               "python3 -c \"\n"
               "for f in ('/proc/1/mem', '/proc/1/environ'):\n"
               "    try:\n"
               "        open(f, 'rb').read(1); print('READ', f)\n"
               "    except OSError as e:\n"
               "        print(type(e).__name__)\"",
               NULL),
          "PermissionError\nPermissionError\n",
          "a process in the sandbox cannot read the agent's memory or environment");
}

int
main (void)
{
  sbx_sandbox_t *sb = start_sandbox (test_options ());
  if (!ok (sb != NULL, "sandbox started"))
    return done_testing ();
  test_defaults (sb);
  test_bridge ();
  test_isolation (sb);
  test_limits ();
  test_agent_channel (sb);
  remove_sandbox (sb);
  return done_testing ();
}
