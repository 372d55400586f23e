#include "fieldflow/io/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "fieldflow/core/error.hpp"

namespace ff {

namespace fs = std::filesystem;

namespace {
// Distinguishes temporaries of one process (two writers of the same path in different threads).
std::atomic<unsigned> temp_counter{0};

// ---- Registry of live temporaries, read by the signal handler ----
// Fixed storage and lock-free atomics only: the handler may run at any instant.
constexpr int kSlots = 64;
struct Slot {
  std::atomic<int> state{0};  // 0 free, 1 being filled, 2 live
  char path[PATH_MAX];
};
Slot slots[kSlots];
static_assert(std::atomic<int>::is_always_lock_free);

int register_temporary(const std::string& path) {
  if (path.size() >= PATH_MAX) return -1;  // too long to register: only the destructor removes it
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (!slots[i].state.compare_exchange_strong(expected, 1)) continue;
    std::memcpy(slots[i].path, path.c_str(), path.size() + 1);
    slots[i].state.store(2, std::memory_order_release);
    return i;
  }
  return -1;  // full (more than 64 writes at once): those are removed by destructors only
}

void unregister_temporary(int slot) {
  if (slot >= 0) slots[slot].state.store(0, std::memory_order_release);
}

void write_stderr(const char* text) {
  ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

extern "C" void remove_temporaries_and_exit(int signal_number) {
  for (Slot& s : slots)
    if (s.state.load(std::memory_order_acquire) == 2) ::unlink(s.path);
  if (prints_errors().load()) {
    const char* name = signal_number == SIGINT    ? "SIGINT"
                       : signal_number == SIGTERM ? "SIGTERM"
                                                  : "SIGHUP";
    write_stderr("fieldflow: interrupted by ");
    write_stderr(name);
    write_stderr("; unfinished outputs removed\n");
  }
  ::_exit(128 + signal_number);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// Writer temporaries of `name` left by processes that no longer run: ".NAME.tmp.PID.K".
void remove_stale_temporaries(const fs::path& folder, const std::string& name) {
  const std::string prefix = "." + name + ".tmp.";
  DIR* dir = ::opendir(folder.empty() ? "." : folder.c_str());
  if (!dir) return;
  const pid_t self = ::getpid();
  while (const dirent* entry = ::readdir(dir)) {
    const std::string entry_name = entry->d_name;
    if (entry_name.size() <= prefix.size() || entry_name.compare(0, prefix.size(), prefix) != 0)
      continue;
    // The rest must be PID.K, both decimal.
    const std::string rest = entry_name.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string::npos || dot + 1 == rest.size() || dot > 9) continue;
    if (rest.find_first_not_of("0123456789.") != std::string::npos ||
        rest.find('.', dot + 1) != std::string::npos)
      continue;
    const long pid = std::stol(rest.substr(0, dot));
    if (pid <= 0 || pid == long(self)) continue;
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to judge)
    std::error_code ec;
    fs::remove(folder / entry_name, ec);
  }
  ::closedir(dir);
}

void fsync_path(const std::string& path, const std::string& name_in_errors, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) {
    if (directory) return;  // best effort for the folder entry
    throw Error(name_in_errors, "cannot open for fsync: " + errno_text(errno));
  }
  const int status = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (status != 0 && !directory)
    throw Error(name_in_errors, "cannot write (fsync): " + errno_text(err));
}

const char* file_type_name(mode_t mode) {
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISDIR(mode)) return "an existing folder";
  return "not a regular file";
}
}  // namespace

AtomicFile::AtomicFile(std::string final_path, OutputKind kind)
    : final_path_(std::move(final_path)) {
  if (final_path_.empty()) throw Error("output", "empty file name");
  fs::path target(final_path_);
  if (target.filename().empty() || target.filename() == "." || target.filename() == "..")
    throw Error(final_path_, "is a folder name, not a file name");

  struct stat st {};
  if (::stat(final_path_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw Error(final_path_, "is an existing folder");
    if (!S_ISREG(st.st_mode)) {
      const bool pass = kind == OutputKind::stream && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode));
      if (!pass)
        throw Error(final_path_,
                    std::string("is ") + file_type_name(st.st_mode) +
                        (kind == OutputKind::file
                             ? ", not a regular file: this output (HDF5) needs a file name"
                             : ", not a regular file: refusing to replace it"));
      write_through_ = true;
      target_path_ = temp_path_ = final_path_;
      return;
    }
    // A regular file, maybe reached through symbolic links: replace the file, keep the links.
    struct stat lst {};
    if (::lstat(final_path_.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
      std::error_code ec;
      const fs::path resolved = fs::canonical(target, ec);
      if (ec) throw Error(final_path_, "cannot resolve the symbolic link: " + ec.message());
      target = resolved;
    }
  } else {
    struct stat lst {};
    if (::lstat(final_path_.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
      throw Error(final_path_, "is a symbolic link to a missing file; refusing to replace it");
  }
  target_path_ = target.string();

  const fs::path parent = target.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec)
      throw Error(final_path_, "cannot create folder " + parent.string() + ": " + ec.message());
  }
  remove_stale_temporaries(parent, target.filename().string());
  // Built with += : GCC 12 warns falsely (-Wrestrict) on "." + std::string.
  std::string name(".");
  name += target.filename().string();
  name += ".tmp.";
  name += std::to_string(::getpid());
  name += '.';
  name += std::to_string(temp_counter++);
  temp_path_ = (parent / name).string();
  slot_ = register_temporary(temp_path_);
}

AtomicFile::~AtomicFile() {
  if (!committed_ && !write_through_) {
    std::error_code ec;
    fs::remove(temp_path_, ec);
  }
  unregister_temporary(slot_);
}

void AtomicFile::commit() {
  if (committed_) return;
  if (write_through_) {
    committed_ = true;
    return;
  }
  std::error_code ec;
  if (!fs::exists(temp_path_, ec)) throw Error(final_path_, "nothing was written");
  fsync_path(temp_path_, final_path_, false);
  if (std::rename(temp_path_.c_str(), target_path_.c_str()) != 0)
    throw Error(final_path_, "cannot move the finished file into place: " + errno_text(errno));
  committed_ = true;
  unregister_temporary(slot_);
  slot_ = -1;
  const fs::path parent = fs::path(target_path_).parent_path();
  fsync_path(parent.empty() ? "." : parent.string(), final_path_, true);
}

void atomic_write_text(const std::string& path, const std::string& text) {
  AtomicFile file(path, OutputKind::stream);
  int fd = -1;
  if (file.writes_through()) {
    // Non-blocking open: a FIFO nobody reads is refused instead of hanging.
    fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0 && errno == ENXIO) throw Error(path, "is a FIFO that nobody reads from");
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  } else {
    fd = ::open(file.temp_path().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  }
  if (fd < 0) throw Error(path, "cannot write: " + errno_text(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      throw Error(path, "cannot write: " + errno_text(err));
    }
    done += size_t(n);
  }
  if (::close(fd) != 0 && errno != EINTR) throw Error(path, "cannot write: " + errno_text(errno));
  file.commit();
}

void refuse_output_that_is_input(const std::string& output,
                                 const std::vector<std::string>& inputs) {
  struct stat out {};
  if (output.empty() || ::stat(output.c_str(), &out) != 0) return;  // does not exist yet
  for (const std::string& input : inputs) {
    struct stat in {};
    if (input.empty() || ::stat(input.c_str(), &in) != 0) continue;
    if (in.st_dev == out.st_dev && in.st_ino == out.st_ino)
      throw Error(output, input == output
                              ? "is also an input of this command; refusing to overwrite it"
                              : "is also an input of this command (" + input +
                                    "); refusing to overwrite it");
  }
}

void remove_temporaries_on_signal() {
  struct sigaction action {};
  action.sa_handler = remove_temporaries_and_exit;
  sigfillset(&action.sa_mask);  // no nesting: one cleanup, one exit
  for (const int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &action, nullptr);
}

}  // namespace ff
