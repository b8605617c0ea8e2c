#define _GNU_SOURCE
#include <sys/mman.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static int incore(int fd, size_t len){ unsigned char v[4096]; void*p=mmap(0,len,PROT_READ,MAP_SHARED,fd,0); mincore(p,len,v); int n=0; for(size_t i=0;i<len/4096;i++) n+=v[i]&1; munmap(p,len); return n;}
static void rss(const char*tag, char*base){ char cmd[256]; snprintf(cmd,sizeof cmd,"grep -A4 '^%lx' /proc/%d/smaps | grep Rss | sed 's/^/%s /'", (unsigned long)base, getpid(), tag); system(cmd);}
static long majf(){ FILE*f=fopen("/proc/self/stat","r"); char b[1024]; fread(b,1,1024,f); fclose(f); char*p=strrchr(b,')'); long v[20]; sscanf(p+2,"%*c %*d %*d %*d %*d %*d %*u %ld %ld %ld %ld",&v[0],&v[1],&v[2],&v[3]); return v[2];}
int main(int argc,char**argv){
  const char*path=argv[1]; size_t len=4<<20; /* 1024 pages */
  int fd=open(path,O_RDWR|O_CREAT|O_TRUNC,0644); char buf[4096]; memset(buf,'x',4096);
  for(int i=0;i<1024;i++) pwrite(fd,buf,4096,(off_t)i*4096); fsync(fd); posix_fadvise(fd,0,0,POSIX_FADV_DONTNEED);
  printf("cached after fadvise: %d\n", incore(fd,len));
  char*m=mmap(0,len,PROT_READ,MAP_PRIVATE,fd,0);
  long mj=majf(); volatile char s=m[100*4096]; (void)s;
  printf("touch page 100: majflt +%ld cached %d\n", majf()-mj, incore(fd,len)); rss("A",m);
  mj=majf(); s=m[101*4096]; printf("touch page 101: majflt +%ld cached %d\n", majf()-mj, incore(fd,len)); rss("B",m);
  mj=majf(); s=m[120*4096]; printf("touch page 120: majflt +%ld cached %d\n", majf()-mj, incore(fd,len)); rss("C",m);
  mj=majf(); s=m[500*4096]; printf("touch page 500: majflt +%ld cached %d\n", majf()-mj, incore(fd,len)); rss("D",m);
  return 0;}
