#!/usr/bin/env bash
# The disk limit (--disk). On an engine whose storage driver has no quota
# (overlay2 on ext4, as the test machines' engine), sbx says so when it makes
# the sandbox, caps every file at the limit and /tmp too. On an engine that
# has one, the engine holds the whole sandbox to it: this test starts such an
# engine of its own, on a btrfs loop file (the test kernels have no XFS quota
# support, which overlay2's quota needs).
. "$(dirname "$0")/lib.sh"

image=${SBX_TEST_IMAGE:-sbx-test/busybox:1}
main_sock=/var/run/docker.sock
engine_of() { curl -sS --max-time 30 --unix-socket "$1" "http://localhost$2" "${@:3}"; }

# --- an engine without quota: capped files ---------------------------------------
driver=$(engine_of "$main_sock" /info | python3 -c 'import json,sys; d=json.load(sys.stdin)
print(d["Driver"], dict(d["DriverStatus"]).get("Backing Filesystem", ""))')
diag "the main engine: $driver"
if [ "$driver" = "overlay2 extfs" ]; then
  run "$sbx" create --image "$image" --disk 20m --memory 64m -q
  id=$(out)
  cleanup_ids+=("$id")
  is "$(rc)" 0 "create --disk 20m"
  is "$(err)" "sbx: the engine's storage driver has no quota for a container's disk (overlay2 needs xfs with pquota): instead of a 20 MiB disk limit, each file is capped at 20 MiB and /tmp at 20 MiB" \
    "it says once that the engine has no quota, and what holds instead"
  run "$sbx" exec "$id" -- 'dd if=/dev/zero of=/workspace/big bs=1M count=30 2>/dev/null; echo $?; wc -c </workspace/big'
  is "$(out)" "$(printf '153\n20971520')" "a command's file stops at 20 MiB (SIGXFSZ)"
  run "$sbx" exec "$id" -- 'trap "" XFSZ; dd if=/dev/zero of=/workspace/big2 bs=1M count=30 2>&1 | head -1'
  is "$(out)" "dd: error writing '/workspace/big2': File too large" "or EFBIG when it ignores the signal"
  run "$sbx" exec "$id" -- 'ulimit -f unlimited 2>&1; ulimit -H -f 999999999 2>&1; ulimit -f'
  is "$(out)" "$(printf 'sh: error setting limit: Operation not permitted\nsh: error setting limit: Operation not permitted\n40960')" \
    "nothing inside can raise the cap"
  run "$sbx" exec "$id" -- 'sh -c "ulimit -f" & wait; python3 -c "import resource; print(resource.getrlimit(resource.RLIMIT_FSIZE))" 2>/dev/null || true'
  ok "$(head -1 "$tmp/out" | grep -qx 40960; echo $?)" "background and nested commands inherit it"
  run "$sbx" exec "$id" -- 'df -k /tmp | tail -1'
  ok "$(awk '{exit !($2 == 20480)}' "$tmp/out"; echo $?)" "/tmp is a tmpfs of 20 MiB ($(out))"
  run "$sbx" exec "$id" -- 'for f in a b; do dd if=/dev/zero of=/tmp/$f bs=1M count=15 2>&1 | grep error; done; du -sk /tmp'
  is "$(out)" "$(printf "dd: error writing '/tmp/b': No space left on device\n20480\t/tmp")" "and /tmp fills at 20 MiB"
  head -c 25000000 /dev/zero >"$tmp/25m"
  run "$sbx" write "$id" /workspace/w <"$tmp/25m"
  is "$(rc)" 125 "sbx write past the cap fails"
  is "$(err)" "sbx: cannot write /workspace/w: files in this sandbox are capped at 20 MiB (its disk limit, as the engine has no disk quota)" \
    "saying why"
  run "$sbx" exec "$id" -- 'ls -a /workspace | grep -c sbx-'
  is "$(out)" "0" "and leaves no partial file behind"
  run "$sbx" exec "$id" -- 'rm -f /tmp/a /tmp/b; echo ok >/tmp/small; cat /tmp/small'
  is "$(out)" "ok" "the sandbox still works"
  "$sbx" rm "$id" >/dev/null 2>&1
  run "$sbx" create --image "$image" -q
  cleanup_ids+=("$(out)")
  is "$(err)" "sbx: the engine's storage driver has no quota for a container's disk (overlay2 needs xfs with pquota): instead of a 10 GiB disk limit, each file is capped at 10 GiB and /tmp at 1 GiB" \
    "the default disk limit is 10 GiB"
  "$sbx" rm "$(out)" >/dev/null 2>&1
else
  ok 1 "the main engine is overlay2 on ext4 as on the test machines (it is '$driver')"
fi

run "$sbx" create --image "$image" --disk 1m
is "$(err)" "sbx: disk limit 1048576 bytes is out of range: use 16m to 1p" "a disk limit too small"
run "$sbx" create --image "$image" --disk 2x
is "$(head -1 "$tmp/err"):$(rc)" "sbx create: --disk: invalid size '2x': use a number with an optional unit, such as 512m or 2g:125" \
  "an invalid size is a usage error"

# A named sandbox asked for again with another disk limit.
run "$sbx" create --image "$image" --name sbx-disk-drift --disk 20m -q
cleanup_ids+=(sbx-disk-drift)
run "$sbx" create --image "$image" --name sbx-disk-drift -q
is "$(rc):$(err)" "125:sbx: sandbox sbx-disk-drift exists with other options: disk 20 MiB (asked: 10 GiB); use it as it is (the same options), replace it (--replace, sbx_options_set_replace), or remove it first (\`sbx rm sbx-disk-drift\`)" \
  "re-use with another disk limit names the difference"
"$sbx" rm sbx-disk-drift >/dev/null 2>&1

# --- an engine with quota: its own, on btrfs -------------------------------------
work=$(mktemp -d /var/tmp/sbx-disk-test.XXXXXX)
exec_root=$(mktemp -d /run/sbx-disk-test.XXXXXX)
sock=$exec_root/docker.sock
quota_cleanup() {
  if [ -S "$sock" ]; then
    for id in "${quota_ids[@]}"; do DOCKER_HOST=unix://$sock "$sbx" rm "$id" >/dev/null 2>&1; done
  fi
  if [ -f "$exec_root/dockerd.pid" ]; then
    pid=$(cat "$exec_root/dockerd.pid")
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # The engine's containerd may hold the file system a moment longer; a
  # lazy unmount at last, so that rm never reaches into it.
  for _ in $(seq 1 50); do
    mountpoint -q "$work/root" || break
    umount "$work/root" 2>/dev/null || sleep 0.1
  done
  mountpoint -q "$work/root" && umount -l "$work/root"
  rm -rf "$work" "$exec_root"
  cleanup
}
quota_ids=()
trap quota_cleanup EXIT

truncate -s 2G "$work/disk.img" && mkdir "$work/root" \
  && mkfs.btrfs -q -f "$work/disk.img" >/dev/null 2>&1 \
  && mount -o loop "$work/disk.img" "$work/root"
ok $? "a btrfs file system on a loop file"
# In a network namespace of its own: a second engine on the host's would
# remove the first's docker0 (--bridge=none) or fight over it.
bridges_before=$(ip -o link show type bridge | awk -F': ' '{print $2}' | sort | tr '\n' ' ')
setsid unshare --net dockerd --storage-driver btrfs --data-root "$work/root/docker" --exec-root "$exec_root" \
  -H "unix://$sock" --pidfile "$exec_root/dockerd.pid" --bridge=none --iptables=false \
  --ip-masq=false </dev/null >"$work/dockerd.log" 2>&1 &
for _ in $(seq 1 300); do [ "$(engine_of "$sock" /_ping 2>/dev/null)" = OK ] && break; sleep 0.1; done
is "$(engine_of "$sock" /_ping 2>/dev/null)" OK "a second engine on it answers" || diag "$(tail -5 "$work/dockerd.log")"
engine_of "$main_sock" "/images/get?names=$image" \
  | engine_of "$sock" /images/load -X POST -H 'Content-Type: application/x-tar' --data-binary @- >/dev/null
is "$(engine_of "$sock" "/images/$image/json" -o /dev/null -w '%{http_code}')" 200 "the test image loaded into it"

export DOCKER_HOST=unix://$sock
run "$sbx" create --image "$image" --disk 50m -q
id=$(out)
quota_ids+=("$id")
is "$(rc)" 0 "create --disk 50m on it"
is "$(err)" "" "no word of a missing quota"
is "$(engine_of "$sock" "/containers/$id/json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["HostConfig"]["StorageOpt"])')" \
  "{'size': '52428800'}" "the engine's storage quota is 50 MiB"
run "$sbx" exec "$id" -- 'ulimit -f; dd if=/dev/zero of=/workspace/big bs=1M count=100 2>&1 | head -1'
is "$(out)" "$(printf "unlimited\ndd: error writing '/workspace/big': Disk quota exceeded")" \
  "a 100 MB file fails at the quota (no file cap)"
run "$sbx" exec "$id" -- 'echo x >/workspace/more || echo failed'
ok "$(grep -q "Disk quota exceeded" "$tmp/err" && has out failed; echo $?)" "so does another file: the quota is for the whole sandbox ($(err))"
run "$sbx" exec "$id" -- 'echo x >/tmp/more || echo failed'
ok "$(grep -q "Disk quota exceeded" "$tmp/err" && has out failed; echo $?)" "/tmp included"
run "$sbx" write "$id" /workspace/w <"$tmp/25m"
is "$(err)" "sbx: cannot write /workspace/w: the sandbox's disk is full (Quota exceeded); remove files or make the sandbox with a larger disk limit" \
  "sbx write says the disk is full"
run "$sbx" exec "$id" -- 'rm -f /workspace/big /workspace/more /tmp/more; dd if=/dev/zero of=/workspace/again bs=1M count=10 2>/dev/null; wc -c </workspace/again'
is "$(out)" "10485760" "space comes back when files are removed"
"$sbx" rm "$id" >/dev/null 2>&1
is "$(engine_of "$sock" "/containers/json?all=1" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 0 \
  "nothing is left on that engine"
unset DOCKER_HOST
quota_cleanup
trap - EXIT
is "$(ip -o link show type bridge | awk -F': ' '{print $2}' | sort | tr '\n' ' ')" "$bridges_before" \
  "the host's bridges are as they were"
is "$(engine_of "$main_sock" /_ping)" OK "the main engine still answers"
done_testing
