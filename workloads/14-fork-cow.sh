#!/usr/bin/env bash
# fork and copy-on-write: a child starts with its parent's memory without
# copying it. Both map the same pages read-only (smaps Shared_Dirty, Pss
# half of Rss); the first write on either side copies one page
# (Private_Dirty grows, a minor fault each); memory is used once
# (AnonPages) however many processes map it. When the parent exits, the
# child is init's and owns every page.
. "$(dirname "$0")/lib.sh" "$@"

rollup() { awk -v k="$2:" '$1 == k { print $2 }' "$MNT/$1/smaps_rollup"; }
row() {
    printf '  %-7s Rss %6s kB  Pss %6s kB  Shared_Dirty %6s kB  Private_Dirty %6s kB  minflt %s\n' \
        "$1" "$(rollup "$2" Rss)" "$(rollup "$2" Pss)" "$(rollup "$2" Shared_Dirty)" \
        "$(rollup "$2" Private_Dirty)" "$(awk '{ print $10 }' "$MNT/$2/stat")"
}
mem() { printf '  AnonPages %s kB  MemFree %s kB\n' "$(meminfo AnonPages)" "$(meminfo MemFree)"; }

db=$(spawn db)
pctl "$db" "mmap 64M name=data"
pctl "$db" "touch data 64M"
say "a process with 64M of its own memory"
row parent "$db"
mem
free0=$(meminfo MemFree)

say "fork: the child maps the same pages, nothing is copied"
exec 3<>"$MNT/ctl"; echo "fork $db" >&3; read -r child <&3; exec 3>&-
grep -E '^(Name|PPid)' "$MNT/$child/status" | tr '\n' ' '; echo
row parent "$db"
row child "$child"
mem
check "nothing was copied" [ $((free0 - $(meminfo MemFree))) -lt 1024 ]
check "the child's pages are all shared" [ "$(rollup "$child" Private_Dirty)" -eq 0 ]

say "the child writes 16M: copy-on-write, one page at a time"
pctl "$child" "touch data 16M write"
row parent "$db"
row child "$child"
mem
check "16M more memory is in use" [ $((free0 - $(meminfo MemFree))) -ge $((16 << 10)) ]
check "the copies are the child's own" [ "$(rollup "$child" Private_Dirty)" -ge $((16 << 10)) ]

say "the parent exits: the child is init's, every page its own"
ctl "kill $db"
grep -E '^PPid' "$MNT/$child/status"
row child "$child"
check "the child was reparented" [ "$(status "$child" PPid)" -eq 1 ]
check "nothing is shared any more" [ "$(rollup "$child" Shared_Dirty)" -eq 0 ]
pass
