/* A stand-in for a loadable kernel module: an ET_REL object with the
   sections a .ko has (.modinfo, .gnu.linkonce.this_module). */
__attribute__((section(".modinfo"), used)) static const char license[] = "license=GPL";
__attribute__((section(".modinfo"), used)) static const char modname[] = "name=hello_mod";
__attribute__((section(".gnu.linkonce.this_module"), used)) static char this_module[64];

int hello_init(void) { return 0; }
void hello_exit(void) {}
