/* The floor: the least a lock-and-run wrapper can do, for scripts/bench to
 * measure fasten and flock(1) against. `floor LOCK COMMAND [ARG...]` opens
 * LOCK, takes an OFD write lock on it (waiting in the kernel), vforks, execs
 * COMMAND and waits for it. No option parsing, no messages, no signal
 * handling: it is not a tool, only the cost of the system calls every
 * wrapper makes. Linked statically, as the cheapest start there is. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    return 64;
  }
  int fd = open(argv[1], O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  struct flock range = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  if (fd < 0 || fcntl(fd, F_OFD_SETLKW, &range) != 0) {
    return 71;
  }
  pid_t pid = vfork();
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) {
    return 71;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
