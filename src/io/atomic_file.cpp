#include "fieldflow/io/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "fieldflow/core/error.hpp"

namespace ff {

namespace fs = std::filesystem;

namespace {
// Distinguishes temporaries of one process (two writers of the same path in different threads).
std::atomic<unsigned> temp_counter{0};

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) {
    if (directory) return;  // best effort for the folder entry
    throw Error(path, std::string("cannot open for fsync: ") + std::strerror(errno));
  }
  const int status = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (status != 0 && !directory)
    throw Error(path, std::string("fsync failed: ") + std::strerror(err));
}
}  // namespace

AtomicFile::AtomicFile(std::string final_path) : final_path_(std::move(final_path)) {
  if (final_path_.empty()) throw Error("output", "empty file name");
  const fs::path target(final_path_);
  if (target.filename().empty()) throw Error(final_path_, "is a folder name, not a file name");
  const fs::path parent = target.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec)
      throw Error(final_path_, "cannot create folder " + parent.string() + ": " + ec.message());
  }
  std::error_code ec;
  if (fs::is_directory(target, ec)) throw Error(final_path_, "is an existing folder");
  // Built with += : GCC 12 warns falsely (-Wrestrict) on "." + std::string.
  std::string name(".");
  name += target.filename().string();
  name += ".tmp.";
  name += std::to_string(::getpid());
  name += '.';
  name += std::to_string(temp_counter++);
  temp_path_ = (parent / name).string();
}

AtomicFile::~AtomicFile() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_path_, ec);
  }
}

void AtomicFile::commit() {
  if (committed_) return;
  std::error_code ec;
  if (!fs::exists(temp_path_, ec)) throw Error(final_path_, "nothing was written");
  fsync_path(temp_path_, false);
  if (std::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
    throw Error(final_path_, std::string("cannot rename the temporary file into place: ") +
                                 std::strerror(errno));
  committed_ = true;
  const fs::path parent = fs::path(final_path_).parent_path();
  fsync_path(parent.empty() ? "." : parent.string(), true);
}

void atomic_write_text(const std::string& path, const std::string& text) {
  AtomicFile file(path);
  std::FILE* f = std::fopen(file.temp_path().c_str(), "wb");
  if (!f) throw Error(path, std::string("cannot write: ") + std::strerror(errno));
  const size_t written = std::fwrite(text.data(), 1, text.size(), f);
  const bool ok = written == text.size() && std::fflush(f) == 0;
  const int err = errno;
  if (std::fclose(f) != 0 || !ok)
    throw Error(path, std::string("cannot write: ") + std::strerror(ok ? errno : err));
  file.commit();
}

}  // namespace ff
