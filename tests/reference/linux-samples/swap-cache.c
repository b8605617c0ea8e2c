/*
 * The swap cache and swap readahead on a real kernel (reference for
 * mmfs's src/mm/swap_state.rs). Run as root with a swap area on:
 *   dd if=/dev/zero of=/var/tmp/ref.swap bs=1M count=256
 *   chmod 600 /var/tmp/ref.swap; mkswap /var/tmp/ref.swap; swapon /var/tmp/ref.swap
 *   cc -O2 -o swap-cache swap-cache.c && ./swap-cache
 *   swapoff /var/tmp/ref.swap; rm /var/tmp/ref.swap
 * Steps: mmap 1 MiB anon, write it, MADV_PAGEOUT, read it back,
 * MADV_PAGEOUT again (the clean swap-cached pages are dropped without
 * I/O), then write it sequentially (major faults with VMA readahead).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define SIZE (1UL << 20)

static long vmstat(const char *key)
{
	FILE *f = fopen("/proc/vmstat", "r");
	char k[128];
	long v, r = -1;
	while (fscanf(f, "%127s %ld", k, &v) == 2)
		if (!strcmp(k, key))
			r = v;
	fclose(f);
	return r;
}

static long meminfo(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	long r = -1;
	size_t n = strlen(key);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':')
			r = atol(line + n + 1);
	fclose(f);
	return r;
}

struct snap { long minflt, majflt, pswpin, pswpout, ra, ra_hit, cached_kb, swapused_kb; };

static struct snap take(void)
{
	struct rusage ru;
	struct snap s;
	getrusage(RUSAGE_SELF, &ru);
	s.minflt = ru.ru_minflt;
	s.majflt = ru.ru_majflt;
	s.pswpin = vmstat("pswpin");
	s.pswpout = vmstat("pswpout");
	s.ra = vmstat("swap_ra");
	s.ra_hit = vmstat("swap_ra_hit");
	s.cached_kb = meminfo("SwapCached");
	s.swapused_kb = meminfo("SwapTotal") - meminfo("SwapFree");
	return s;
}

static void report(const char *step, struct snap a, struct snap b)
{
	printf("%-34s minflt %4ld majflt %3ld pswpin %4ld pswpout %4ld swap_ra %4ld swap_ra_hit %4ld  SwapCached %5ld kB  swap used %6ld kB\n",
	       step, b.minflt - a.minflt, b.majflt - a.majflt, b.pswpin - a.pswpin,
	       b.pswpout - a.pswpout, b.ra - a.ra, b.ra_hit - a.ra_hit,
	       b.cached_kb, b.swapused_kb);
	fflush(stdout);
}

int main(void)
{
	/*
	 * VMA readahead never crosses a 2M (PMD) boundary, so place the
	 * region inside one: reserve 4M, keep the 1M at the 2M-aligned
	 * address inside it, unmap the rest (which also keeps the VMA from
	 * merging with a neighbour).
	 */
	char *r = mmap(NULL, 4 * SIZE, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;
	volatile char sink = 0;
	struct snap a, b;
	size_t i;

	if (r == MAP_FAILED) { perror("mmap"); return 1; }
	p = (char *)(((unsigned long)r + 2 * SIZE - 1) & ~(2 * SIZE - 1));
	if (mprotect(p, SIZE, PROT_READ | PROT_WRITE)) { perror("mprotect"); return 1; }
	printf("region %p-%p (%lu pages), page-cluster ", p, p + SIZE, SIZE / 4096);
	fflush(stdout);
	system("cat /proc/sys/vm/page-cluster");
	fflush(stdout);

	a = take();
	for (i = 0; i < SIZE; i += 4096) p[i] = 1;
	b = take(); report("1 write 1M", a, b);

	a = take();
	if (madvise(p, SIZE, MADV_PAGEOUT)) { perror("madvise"); return 1; }
	b = take(); report("2 MADV_PAGEOUT", a, b);
	sleep(1); /* let the writes complete */
	a = take(); report("  one second later", a, a);

	a = take();
	for (i = 0; i < SIZE; i += 4096) sink += p[i];
	b = take(); report("3 read it back", a, b);

	a = take();
	if (madvise(p, SIZE, MADV_PAGEOUT)) { perror("madvise"); return 1; }
	b = take(); report("4 MADV_PAGEOUT again (clean)", a, b);

	a = take();
	for (i = 0; i < SIZE; i += 4096) p[i] = 2;
	b = take(); report("5 write it sequentially", a, b);
	return 0;
}
