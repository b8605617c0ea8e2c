/* What Linux's /proc/kpagecount and /proc/kpageflags say about a process's
 * own pages: anonymous (written, read-only = zero page), after fork, a file's
 * page cache page (read(2), then mapped), shared anonymous memory, free pages.
 * Build: cc -O2 -o kpageflags-self kpageflags-self.c; run as root. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *names[] = {"LOCKED", "ERROR", "REFERENCED", "UPTODATE", "DIRTY", "LRU",
	"ACTIVE", "SLAB", "WRITEBACK", "RECLAIM", "BUDDY", "MMAP", "ANON", "SWAPCACHE",
	"SWAPBACKED", "COMPOUND_HEAD", "COMPOUND_TAIL", "HUGE", "UNEVICTABLE", "HWPOISON",
	"NOPAGE", "KSM", "THP", "OFFLINE", "ZERO_PAGE", "IDLE", "PGTABLE"};
static int pm, kc, kf;

static uint64_t at(int fd, uint64_t index)
{
	uint64_t v = 0;
	if (pread(fd, &v, 8, index * 8) != 8)
		return ~0ull;
	return v;
}

static uint64_t pfn_of(void *addr)
{
	uint64_t e = at(pm, (uintptr_t)addr / 4096);
	return (e >> 63) ? (e & ((1ull << 55) - 1)) : 0;
}

static void show(const char *what, uint64_t pfn)
{
	uint64_t f = at(kf, pfn);
	printf("%-34s pfn %#9llx count %llu flags %#llx", what, (unsigned long long)pfn,
	       (unsigned long long)at(kc, pfn), (unsigned long long)f);
	for (int b = 0; b < 64; b++)
		if (f >> b & 1) {
			if (b < (int)(sizeof names / sizeof *names))
				printf(" %s", names[b]);
			else
				printf(" bit%d", b);
		}
	printf("\n");
}

static void showv(const char *what, void *addr)
{
	uint64_t pfn = pfn_of(addr);
	if (!pfn) {
		printf("%-34s not present\n", what);
		return;
	}
	show(what, pfn);
}

int main(void)
{
	pm = open("/proc/self/pagemap", O_RDONLY);
	kc = open("/proc/kpagecount", O_RDONLY);
	kf = open("/proc/kpageflags", O_RDONLY);
	if (pm < 0 || kc < 0 || kf < 0) {
		perror("open");
		return 1;
	}
	/* Unaligned reads. */
	char b[16];
	printf("pread(kpageflags, 8, offset 4) = %zd\n", pread(kf, b, 8, 4));
	printf("pread(kpageflags, 4, offset 0) = %zd\n", pread(kf, b, 4, 0));

	/* Anonymous: one page written, one read (zero page), 64 written. */
	char *a = mmap(NULL, 128 << 12, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	madvise(a, 128 << 12, MADV_NOHUGEPAGE);
	a[0] = 1;
	showv("anon written (just faulted)", a);
	volatile char r = a[4096];
	(void)r;
	showv("anon read (zero page)", a + 4096);
	for (int i = 2; i < 66; i++)
		a[i << 12] = 1;
	showv("anon written, 64 more faulted", a);
	showv("anon written (page 2)", a + (2 << 12));

	/* fork: the child keeps the page mapped until told to go. */
	int p[2];
	pipe(p);
	pid_t child = fork();
	if (child == 0) {
		char c;
		read(p[0], &c, 1);
		_exit(0);
	}
	showv("anon written, after fork", a);
	showv("anon read (zero page) after fork", a + 4096);
	write(p[1], "x", 1);
	waitpid(child, NULL, 0);
	showv("anon written, child gone", a);
	a[0] = 2;
	showv("anon written again, child gone", a);

	/* A file: written, dropped from the cache, read once, mapped. */
	const char *path = "/var/tmp/kpageflags-self.dat";
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	char buf[65536];
	memset(buf, 'x', sizeof buf);
	write(fd, buf, sizeof buf);
	fsync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	pread(fd, buf, 4096, 0);
	char *f = mmap(NULL, 65536, PROT_READ, MAP_SHARED, fd, 0);
	volatile char s = f[0];
	(void)s;
	uint64_t file_pfn = pfn_of(f);
	uint64_t file_pfn1 = pfn_of(f + 4096);
	show("file page read(2) + mapped", file_pfn);
	if (file_pfn1)
		show("file page 1 (fault-around)", file_pfn1);
	munmap(f, 65536);
	show("file page read(2), unmapped", file_pfn);
	pread(fd, buf, 4096, 0);
	pread(fd, buf, 4096, 8192);
	pread(fd, buf, 4096, 0);
	show("file page read(2) again", file_pfn);
	char *w = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	w[0] = 'y';
	show("file page written through MAP_SHARED", pfn_of(w));
	munmap(w, 65536);
	char *pw = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	s = pw[4096 * 3];
	showv("file page MAP_PRIVATE read", pw + 4096 * 3);
	pw[4096 * 3] = 'z';
	showv("file MAP_PRIVATE written (COW)", pw + 4096 * 3);
	munmap(pw, 65536);
	close(fd);
	unlink(path);

	/* Shared anonymous memory (shmem). */
	char *sh = mmap(NULL, 4 << 12, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	sh[0] = 1;
	showv("shared anon written", sh);
	s = sh[4096];
	showv("shared anon read", sh + 4096);

	/* Free memory: runs of BUDDY pages, head and tails. */
	uint64_t pfn = 0x100000, runs = 0;
	while (runs < 3 && pfn < 0x640000) {
		if (at(kf, pfn) & (1 << 10)) {
			uint64_t start = pfn;
			while (at(kf, pfn) & (1 << 10))
				pfn++;
			printf("BUDDY run %#llx..%#llx (%llu pages)\n", (unsigned long long)start,
			       (unsigned long long)pfn, (unsigned long long)(pfn - start));
			show("  first page of the run", start);
			show("  second page of the run", start + 1);
			show("  last page of the run", pfn - 1);
			runs++;
		}
		pfn++;
	}
	/* Boot memory, holes, the end of RAM. */
	show("pfn 0 (reserved first page)", 0);
	show("pfn 0x10 (first MiB)", 0x10);
	show("pfn 0xa0 (hole below 1 MiB)", 0xa0);
	show("pfn 0x1000 (kernel code)", 0x1000);
	show("pfn 0xc0000 (PCI hole)", 0xc0000);
	show("pfn 0xf0000 (PCI hole)", 0xf0000);
	show("pfn 0x63ffff (last RAM page)", 0x63ffff);
	uint64_t end = 0;
	off_t o = lseek(kf, 0, SEEK_END);
	printf("lseek(kpageflags, 0, SEEK_END) = %lld\n", (long long)o);
	/* Where reads stop: binary search for EOF. */
	uint64_t lo = 0, hi = 1ull << 40;
	while (lo + 1 < hi) {
		uint64_t mid = (lo + hi) / 2;
		uint64_t v;
		if (pread(kf, &v, 8, mid * 8) == 8)
			lo = mid;
		else
			hi = mid;
	}
	end = hi;
	printf("kpageflags reads end at pfn %#llx\n", (unsigned long long)end);
	show("pfn 0x640000 (after RAM)", 0x640000);
	return 0;
}
