#include <sys/mman.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(){ int fd=open("/tmp/fa/al.dat",O_RDWR|O_CREAT,0644); ftruncate(fd,16<<20);
 size_t lens[]={4096,1<<20,(2<<20),(2<<20)+4096,3<<20,(4<<20)}; 
 for(int i=0;i<6;i++){ char*p=mmap(0,lens[i],PROT_READ,MAP_PRIVATE,fd,0); printf("len %zx off 0 -> %p\n",lens[i],p);} 
 char*p=mmap(0,4<<20,PROT_READ,MAP_PRIVATE,fd,1<<20); printf("len 4M off 1M -> %p\n",p);
 p=mmap(0,4<<20,PROT_READ,MAP_PRIVATE,fd,4096); printf("len 4M off 4K -> %p\n",p);
 p=mmap(0,2<<20,PROT_READ,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); printf("anon 2M -> %p\n",p);
 p=mmap(0,3<<20,PROT_READ,MAP_PRIVATE|MAP_ANONYMOUS,-1,0); printf("anon 3M -> %p\n",p);
 return 0;}
