#!/usr/bin/env bash
# Virtual memory is a blank cheque: mmap reserves addresses, not memory.
# Physical pages arrive one page fault at a time, on first touch.
# (768M, not 1G: in overcommit mode 0 Linux refuses one mapping bigger than
# RAM + swap, and a "1G" machine has less than 1G that the kernel manages.)
. "$(dirname "$0")/lib.sh" "$@"

pid=$(spawn cheque)
say "a fresh process $pid"
grep -E '^(VmSize|VmRSS|RssAnon|VmPTE):' "$MNT/$pid/status"
free0=$(meminfo MemFree); rss0=$(status "$pid" VmRSS); faults0=$(vmstat pgfault)

say "mmap 768M: the address space grows, memory does not"
pctl "$pid" "mmap 768M name=buf"
grep 'anon:buf' "$MNT/$pid/maps"
grep -E '^(VmSize|VmRSS):' "$MNT/$pid/status"
check "RSS unchanged after mmap" [ "$(status "$pid" VmRSS)" = "$rss0" ]
check "MemFree unchanged after mmap" [ "$(meminfo MemFree)" = "$free0" ]

say "read 64M: every page maps the shared zero page (no new memory)"
pctl "$pid" "touch buf 64M read"
check "RSS unchanged after reading" [ "$(status "$pid" VmRSS)" = "$rss0" ]
check "each read was a page fault" [ $(( $(vmstat pgfault) - faults0 )) -ge 16384 ]

say "write 512M: 131072 page faults, 512M more RSS"
pctl "$pid" "touch buf 512M write"
grep -E '^(VmSize|VmRSS|RssAnon|VmPTE):' "$MNT/$pid/status"
rss1=$(status "$pid" VmRSS)
check "RSS grew by exactly 512M" [ $(( rss1 - rss0 )) -eq 524288 ]
check "MemFree fell by at least 512M" [ $(( free0 - $(meminfo MemFree) )) -ge 524288 ]
grep -E '^(MemFree|AnonPages|PageTables):' "$MNT/meminfo"
pass
