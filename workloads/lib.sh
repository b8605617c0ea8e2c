# Shared helpers for the workloads. Source it: . "$(dirname "$0")/lib.sh" "$@"
# Every workload takes the mountpoint of a fresh default machine as $1 (else
# $MNT, else mountfs/mnt).
set -euo pipefail
MNT=${1:-${MNT:-mountfs/mnt}}
if [ ! -e "$MNT/buddyinfo" ]; then
    echo "error: $MNT is not an mmfs mount; mount one first: ./mountfs/mount" >&2
    exit 2
fi
WORKLOAD=$(basename "$0" .sh)

# ctl LINE: run one command on the machine; fails the script on error.
ctl() { echo "$*" > "$MNT/ctl"; }
# pctl PID LINE: run one command in a process.
pctl() { local pid=$1; shift; echo "$*" > "$MNT/$pid/ctl"; }
# spawn NAME: start a process and print its pid.
spawn() { ctl "spawn $1"; cat "$MNT/sys/kernel/ns_last_pid"; }
# meminfo KEY: the value of a meminfo key in kB.
meminfo() { awk -v k="$1:" '$1 == k { print $2 }' "$MNT/meminfo"; }
# vmstat KEY: the value of a vmstat counter.
vmstat() { awk -v k="$1" '$1 == k { print $2 }' "$MNT/vmstat"; }
# status PID KEY: a status line's value (kB for Vm* keys).
status() { awk -v k="$2:" '$1 == k { print $2 }' "$MNT/$1/status"; }
# expect_fail ERRNO-TEXT COMMAND...: the command must fail with that text.
expect_fail() {
    local want=$1; shift
    local out
    if out=$(bash -c "$*" 2>&1); then
        fail "expected '$*' to fail with '$want', it succeeded"
    fi
    case "$out" in
        *"$want"*) echo "  refused as expected: ${out##*: }" ;;
        *) fail "expected '$want' from '$*', got: $out" ;;
    esac
}
say() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL [$WORKLOAD]: $*" >&2; exit 1; }
check() { # check DESCRIPTION TEST-EXPRESSION...
    local what=$1; shift
    if "$@"; then echo "  ok: $what"; else fail "$what"; fi
}
pass() { printf '\nPASS [%s]\n' "$WORKLOAD"; }
