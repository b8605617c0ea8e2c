/*
 * Shared anonymous memory (shmem) back from swap on a real kernel:
 * reference for mmfs's shmem swap-in (src/mm/shmem.rs). Run as root with
 * a swap area on and the cgroup v1 memory controller at
 * /sys/fs/cgroup/memory:
 *   dd if=/dev/zero of=/var/tmp/ref.swap bs=1M count=256
 *   chmod 600 /var/tmp/ref.swap; mkswap /var/tmp/ref.swap; swapon /var/tmp/ref.swap
 *   cc -O2 -o shmem-swapin shmem-swapin.c && ./shmem-swapin
 *   swapoff /var/tmp/ref.swap; rm /var/tmp/ref.swap
 * Steps: mmap 1 MiB MAP_SHARED|MAP_ANONYMOUS, write it, MADV_PAGEOUT (the
 * pages go to the swap cache, their writes in flight), read it back (from
 * the swap cache: minor), MADV_PAGEOUT again, let the writes complete,
 * a memory limit on the process's own cgroup 1.25 MiB under its usage
 * (lifted at once) makes reclaim drop the clean swap-cache pages, then
 * read it sequentially: major faults with cluster readahead
 * (shmem_swapin_cluster), whatever the device.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <fcntl.h>

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

static void cg_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, val, strlen(val)) < 0)
		perror(path);
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile char sink = 0;
	struct snap a, b;
	size_t i;
	char pid[32];

	if (p == MAP_FAILED) { perror("mmap"); return 1; }
	mkdir("/sys/fs/cgroup/memory/mmfs-ref", 0755);
	snprintf(pid, sizeof pid, "%d", getpid());
	cg_write("/sys/fs/cgroup/memory/mmfs-ref/cgroup.procs", pid);
	printf("shmem region %p-%p (%lu pages), page-cluster ", p, p + SIZE, SIZE / 4096);
	fflush(stdout);
	system("cat /proc/sys/vm/page-cluster");
	fflush(stdout);

	a = take();
	for (i = 0; i < SIZE; i += 4096) p[i] = 1;
	b = take(); report("1 write 1M", a, b);

	a = take();
	if (madvise(p, SIZE, MADV_PAGEOUT)) { perror("madvise"); return 1; }
	b = take(); report("2 MADV_PAGEOUT", a, b);

	a = take();
	for (i = 0; i < SIZE; i += 4096) sink += p[i];
	b = take(); report("3 read it back", a, b);

	a = take();
	if (madvise(p, SIZE, MADV_PAGEOUT)) { perror("madvise"); return 1; }
	b = take(); report("4 MADV_PAGEOUT again", a, b);
	sleep(1); /* let the writes complete */
	a = take(); report("  one second later", a, a);

	a = take();
	{
		char v[64];
		long usage;
		FILE *f = fopen("/sys/fs/cgroup/memory/mmfs-ref/memory.usage_in_bytes", "r");
		if (!f || fscanf(f, "%ld", &usage) != 1) { perror("usage"); return 1; }
		fclose(f);
		snprintf(v, sizeof v, "%ld", usage - (SIZE + SIZE / 4));
		cg_write("/sys/fs/cgroup/memory/mmfs-ref/memory.limit_in_bytes", v);
		cg_write("/sys/fs/cgroup/memory/mmfs-ref/memory.limit_in_bytes", "-1");
	}
	b = take(); report("5 limit 1.25M under usage, lifted", a, b);

	a = take();
	for (i = 0; i < SIZE; i += 4096) sink += p[i];
	b = take(); report("6 read it sequentially", a, b);

	cg_write("/sys/fs/cgroup/memory/cgroup.procs", pid);
	rmdir("/sys/fs/cgroup/memory/mmfs-ref");
	return 0;
}
