/* How long one anonymous mmap takes when the process already has thousands
 * of VMAs (issue 15, item 1; the mmfs side is benches/scale.rs).
 * Maps 4K pages without a hint, alternating PROT_READ and
 * PROT_READ|PROT_WRITE so that no two neighbours merge, until
 * vm.max_map_count (65530 by default) refuses one. Prints the average cost
 * of the mmaps in a window of 1000 around 1k, 10k and the last 1000 VMAs,
 * and the total, in CPU time of the thread (the machine is shared). The
 * clock is read every STEP mmaps: reading it is a system call of ~0.3 us. 
 *   gcc -O2 -o vma-scale vma-scale.c && ./vma-scale
 * The output on the capture machine is vma-scale.txt. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MAX 70000
#define STEP 100

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int map_count(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		n++;
	fclose(f);
	return n;
}

static double stamp[MAX / STEP + 1];

int main(void)
{
	int before = map_count(), n = 0, err = 0;
	double t0 = now();

	stamp[0] = 0;
	for (; n < MAX; n++) {
		int prot = n % 2 ? PROT_READ | PROT_WRITE : PROT_READ;
		void *p = mmap(NULL, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (p == MAP_FAILED) {
			err = errno;
			break;
		}
		if ((n + 1) % STEP == 0)
			stamp[(n + 1) / STEP] = now() - t0;
	}
	double total = now() - t0;
	/* maps lists [vsyscall] too, which is not a VMA of the mm. */
	printf("VMAs before: %d (maps lines, [vsyscall] included)\n", before);
	printf("mmaps: %d, then: %s\n", n, strerror(err));
	printf("VMAs after: %d (maps lines)\n", map_count());
	int at[] = { 1000, 10000, n / STEP * STEP };
	const char *name[] = { "1k", "10k", "65k" };
	for (int i = 0; i < 3; i++) {
		int hi = at[i], lo = hi - 1000;
		if (lo < 0 || hi > n)
			continue;
		printf("per mmap at %3s VMAs (mmaps %d..%d): %.3f us\n",
		       name[i], lo, hi,
		       (stamp[hi / STEP] - stamp[lo / STEP]) / 1000 * 1e6);
	}
	printf("total: %d mmaps in %.1f ms (%.3f us each)\n", n, total * 1e3,
	       total / n * 1e6);
	return 0;
}
