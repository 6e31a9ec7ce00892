// lock-holder: takes a lock on a file the way other programs do, for the
// integration tests to check fasten against. It prints "locked" once it holds
// the lock, then holds it until its standard input closes or it is killed.
//
//   lock-holder classic|ofd|flock shared|exclusive PATH [try]
//
// classic: fcntl F_SETLKW, as lockf(3), Python fasteners and most programs;
// ofd: F_OFD_SETLKW, as fasten; flock: flock(2), as util-linux flock(1).
// With "try" it makes one attempt and exits 0 if it got the lock, 75 if not.

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: lock-holder classic|ofd|flock shared|exclusive PATH [try]\n");
    return 64;
  }
  const std::string api = argv[1];
  const bool exclusive = std::string(argv[2]) == "exclusive";
  const bool one_try = argc == 5;
  const int fd = open(argv[3], (exclusive ? O_RDWR : O_RDONLY) | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    std::fprintf(stderr, "lock-holder: %s: %s\n", argv[3], std::strerror(errno));
    return 66;
  }
  int result;
  if (api == "flock") {
    result = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | (one_try ? LOCK_NB : 0));
  } else {
    struct flock range {};
    range.l_type = exclusive ? F_WRLCK : F_RDLCK;
    range.l_whence = SEEK_SET;
    const int command =
        api == "ofd" ? (one_try ? F_OFD_SETLK : F_OFD_SETLKW) : (one_try ? F_SETLK : F_SETLKW);
    result = fcntl(fd, command, &range);
  }
  if (result != 0) {
    if (one_try && (errno == EAGAIN || errno == EACCES || errno == EWOULDBLOCK)) {
      return 75;
    }
    std::fprintf(stderr, "lock-holder: lock %s: %s\n", argv[3], std::strerror(errno));
    return 65;
  }
  if (one_try) {
    return 0;
  }
  std::printf("locked\n");
  std::fflush(stdout);
  char buffer[64];
  while (read(STDIN_FILENO, buffer, sizeof buffer) > 0) {
  }
  return 0;
}
