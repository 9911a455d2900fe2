/* A stand-in for a loadable kernel module built the way kbuild builds one
   (ET_REL, -mcmodel=kernel, no .eh_frame, DWARF with .debug_frame): code in
   .text, .text.unlikely and .exit.text, an inlined helper, calls to an
   undefined (exported) function, and data in .data, .bss and .rodata, so
   that its relocations cover R_X86_64_64, 32, 32S, PC32 and PLT32. */
__attribute__((section(".modinfo"), used)) static const char modname[] = "name=relocmod";
__attribute__((section(".gnu.linkonce.this_module"), used)) static char this_module[64];

extern int kernel_export(int);
int counter = 1;
static int sink;
static const int table[4] = {3, 1, 4, 1};
int *volatile tablep = (int *)table;
long addr_of_counter = (long)&counter;

static inline __attribute__((always_inline)) int helper(int x)
{
	return table[x & 3] * x + counter;
}

__attribute__((noinline)) int relocmod_work(int n)
{
	int r = 0;
	for (int i = 0; i < n; i++)
		r += helper(i) + kernel_export(i);
	sink = r;
	return r;
}

__attribute__((noinline, cold)) int relocmod_slow(int n)
{
	return kernel_export(n) + sink;
}

int relocmod_entry(int n)
{
	if (n < 0)
		return relocmod_slow(-n);
	return relocmod_work(n) + 1;
}

__attribute__((section(".exit.text"), noinline)) void relocmod_exit(void)
{
	sink = (int)(long)&table[2];
}
