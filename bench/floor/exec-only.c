/*
 * The physical floor of interception: an EXEC_WRAPPER that does nothing but
 * execve its arguments (no socket, no policy). The benchmark builds it and
 * runs the exec loop through it, so "Run" can be compared with the cost of
 * the one extra execve every intercepted exec pays anyway.
 */
#include <stdio.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs("exec-only: usage: exec-only PROGRAM [ARGS...]\n", stderr);
    return 127;
  }
  /* bash passes: wrapper original-path original-argv... (argv[0] of the program is argv[2]). */
  if (argc < 3) {
    execve(argv[1], argv + 1, environ);
  } else {
    execve(argv[1], argv + 2, environ);
  }
  perror("exec-only: execve");
  return 127;
}
