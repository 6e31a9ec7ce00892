// stress-worker: one turn of the stress run, run as fasten's command while
// fasten holds the lock. It records, in a shared state file mapped by every
// worker, who is inside at the same time:
//
//   stress-worker init STATE          make a zeroed state file
//   stress-worker read STATE          a reader's turn
//   stress-worker write STATE         a writer's turn: also a non-atomic
//                                     read-modify-write of a counter
//   stress-worker report STATE        print the counts; exit 1 on a violation
//
// A violation is a reader inside with a writer, or two writers inside
// together. A lost update shows as a counter short of the writers' turns.

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

namespace {

struct State {
  std::atomic<long> readers_inside;
  std::atomic<long> writers_inside;
  std::atomic<long> reader_turns;
  std::atomic<long> writer_turns;
  std::atomic<long> violations;
  std::atomic<long> most_readers_together;
  long counter; // written by writers only, without atomics: the lock must protect it
};

State* map_state(const char* path, bool create) {
  const int fd = open(path, O_RDWR | (create ? O_CREAT | O_TRUNC : 0), 0644);
  if (fd < 0 || (create && ftruncate(fd, sizeof(State)) != 0)) {
    std::perror(path);
    return nullptr;
  }
  void* memory = mmap(nullptr, sizeof(State), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  return memory == MAP_FAILED ? nullptr : static_cast<State*>(memory);
}

void stay_a_moment() {
  std::this_thread::sleep_for(std::chrono::microseconds(200));
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: stress-worker init|read|write|report STATE\n");
    return 64;
  }
  const std::string what = argv[1];
  State* state = map_state(argv[2], what == "init");
  if (state == nullptr) {
    return 66;
  }
  if (what == "read") {
    const long together = ++state->readers_inside;
    if (state->writers_inside.load() != 0) {
      ++state->violations;
    }
    long most = state->most_readers_together.load();
    while (together > most && !state->most_readers_together.compare_exchange_weak(most, together)) {
    }
    stay_a_moment();
    if (state->writers_inside.load() != 0) {
      ++state->violations;
    }
    --state->readers_inside;
    ++state->reader_turns;
  } else if (what == "write") {
    if (++state->writers_inside != 1 || state->readers_inside.load() != 0) {
      ++state->violations;
    }
    const long before = state->counter;
    stay_a_moment();
    state->counter = before + 1;
    if (state->readers_inside.load() != 0) {
      ++state->violations;
    }
    --state->writers_inside;
    ++state->writer_turns;
  } else if (what == "report") {
    const long lost = state->writer_turns.load() - state->counter;
    std::printf("reader turns %ld, writer turns %ld, violations %ld, lost updates %ld, "
                "most readers together %ld\n",
                state->reader_turns.load(), state->writer_turns.load(), state->violations.load(), lost,
                state->most_readers_together.load());
    return state->violations.load() == 0 && lost == 0 ? 0 : 1;
  } else if (what != "init") {
    std::fprintf(stderr, "stress-worker: unknown turn '%s'\n", what.c_str());
    return 64;
  }
  return 0;
}
