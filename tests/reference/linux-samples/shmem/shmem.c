/* Shared anonymous memory (shmem) on the real kernel: a 1 MiB
 * MAP_SHARED|MAP_ANONYMOUS mapping and a 256K one named with
 * PR_SET_VMA_ANON_NAME; written, forked, written by the child.
 * Prints the VMA lines of maps, the smaps blocks of both mappings,
 * status Rss*, statm and meminfo Shmem at each step.
 * Build: cc -O2 -o shmem shmem.c; run: setarch -R ./shmem */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
static char *shm, *named;
static void show(const char *who, const char *step) {
  char path[64], line[512];
  printf("== %s %s\n", who, step);
  snprintf(path, sizeof path, "/proc/%d/smaps", getpid());
  FILE *f = fopen(path, "r");
  int in = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long a, b;
    if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, ' ') == line + strcspn(line, " ") && line[strcspn(line, "-")] == '-' && strlen(line) > 20 && line[8] != ':') {
      in = (a == (unsigned long)shm || a == (unsigned long)named);
    }
    if (in && strncmp(line, "VmFlags", 7) && strncmp(line, "THPeligible", 11) && strncmp(line, "ProtectionKey", 13)) fputs(line, stdout);
  }
  fclose(f);
  snprintf(path, sizeof path, "/proc/%d/status", getpid());
  f = fopen(path, "r");
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "Rss", 3) || !strncmp(line, "VmRSS", 5)) fputs(line, stdout);
  fclose(f);
  snprintf(path, sizeof path, "/proc/%d/statm", getpid());
  f = fopen(path, "r"); fgets(line, sizeof line, f); printf("statm %s", line); fclose(f);
  f = fopen("/proc/meminfo", "r");
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "Shmem:", 6) || !strncmp(line, "Mapped:", 7) || !strncmp(line, "Committed_AS", 12)) fputs(line, stdout);
  fclose(f);
  fflush(stdout);
}
int main(void) {
  shm = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  named = mmap(0, 256 << 10, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, named, 256 << 10, "db");
  show("parent", "mapped");
  for (int i = 0; i < (1 << 20); i += 4096) shm[i] = 1;
  for (int i = 0; i < (128 << 10); i += 4096) named[i] = 1;
  show("parent", "written");
  pid_t c = fork();
  if (c == 0) {
    show("child", "after-fork");
    for (int i = 0; i < (1 << 20); i += 4096) shm[i] = 2;
    for (int i = 0; i < (256 << 10); i += 4096) named[i] = 2;
    show("child", "written");
    printf("child sees parent's bytes: %d\n", named[0] == 2);
    fflush(stdout);
    sleep(1);
    _exit(0);
  }
  usleep(300000);
  show("parent", "child-written");
  waitpid(c, 0, 0);
  show("parent", "child-exited");
  munmap(shm, 1 << 20);
  show("parent", "unmapped");
  return 0;
}
