/* Where Linux puts anonymous private mmaps without a hint (x86_64).
 * Lengths that are a multiple of 2M go through thp_get_unmapped_area_vmflags
 * and start on a 2M boundary; others do not. Run with ASLR off so that the
 * addresses repeat:   gcc -O2 -o thp-align thp-align.c && setarch -R ./thp-align
 * The output on the capture machine is thp-align.txt; src/mm/mmap.rs replays
 * it (test `pmd_multiple_mappings_are_thp_aligned_as_on_the_real_kernel`). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#define M (1UL << 20)

static char *map(size_t len)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

int main(void)
{
	size_t lens[] = { 4 * M, 2 * M, 6 * M, 3 * M, 2 * M, 2 * M, 2 * M + 4096,
			  2 * M, 2 * M };
	char *lowest = (char *)-1, line[512];
	FILE *f;

	for (unsigned i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		char *p = map(lens[i]);
		printf("mmap %5zuK -> %lx-%lx%s\n", lens[i] >> 10,
		       (unsigned long)p, (unsigned long)(p + lens[i]),
		       (unsigned long)p % (2 * M) ? "" : "  2M-aligned");
		if (p < lowest)
			lowest = p;
	}
	/* The VMAs they make: adjacent ones merged, a gap keeps others apart. */
	f = fopen("/proc/self/maps", "r");
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		sscanf(line, "%lx-%lx", &s, &e);
		if (s >= (unsigned long)lowest && s < (unsigned long)lowest + 64 * M)
			printf("maps %s", line);
	}
	fclose(f);
	return 0;
}
