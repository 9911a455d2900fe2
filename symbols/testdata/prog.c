/* prog.c: a small program for the symbols package's golden tests.
   Built by the Makefile with gcc -g -O2; the binary is committed. */
#include <stdio.h>
#include <stdlib.h>

int counter;
static int table[16] = {1, 2, 3, 5, 8, 13, 21, 34};

static inline int square(int x) { return x * x; }

static inline int sum_squares(int n)
{
	int s = 0;
	for (int i = 0; i < n; i++)
		s += square(table[i & 15]);
	return s;
}

__attribute__((noinline)) int leaf(int x)
{
	counter += x;
	return sum_squares(x) + counter;
}

__attribute__((noinline)) int middle(int x)
{
	int r = leaf(x + 1);
	if (r > 1000)
		abort();
	return r * 2;
}

static __attribute__((noinline)) int helper(int a, int b)
{
	return middle(a) - middle(b);
}

int main(int argc, char **argv)
{
	int v = argc > 1 ? atoi(argv[1]) : 3;
	printf("%d\n", helper(v, v + 2));
	return 0;
}
