#pragma once
// No half-written output: every file fieldflow writes goes to a temporary name beside its final
// path and is renamed into place only once complete (rename is atomic within one file system).
#include <string>

namespace ff {

class AtomicFile {
 public:
  explicit AtomicFile(std::string final_path);  // creates the parent folder if needed
  ~AtomicFile();                                // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const std::string& temp_path() const { return temp_path_; }
  const std::string& final_path() const { return final_path_; }
  void commit();  // fsync and rename temp_path() to final_path()

 private:
  std::string final_path_;
  std::string temp_path_;
  bool committed_ = false;
};

// Writes text to path atomically.
void atomic_write_text(const std::string& path, const std::string& text);

}  // namespace ff
