#pragma once
// No half-written output, and no output that costs data (docs/io.md "Every output is written
// atomically"):
// - a file is written under a temporary name beside its destination, `.NAME.tmp.PID.K`, then
//   fsync'ed and renamed into place; the destination is renamed onto only when it is a regular
//   file or absent (a symbolic link to a regular file: the file it points to is replaced, the link
//   kept);
// - character devices and FIFOs (/dev/null, /dev/stdout, a named pipe) are written through
//   directly by text outputs (OutputKind::stream: CSV); seekable outputs (OutputKind::file: HDF5)
//   refuse them with one line. Block devices, sockets and folders are always refused;
// - the temporaries of writes in progress are registered: remove_temporaries_on_signal() makes
//   SIGINT/SIGTERM/SIGHUP remove them and exit 128 + signal number; a later write of the same
//   destination removes stale temporaries of dead processes (`.NAME.tmp.PID.*`, PID not running);
// - errors name the destination the user gave, never the temporary name.
#include <string>
#include <vector>

namespace ff {

enum class OutputKind {
  file,    // needs a regular file (HDF5): devices and FIFOs are refused
  stream,  // sequential text (CSV): devices and FIFOs are written through
};

class AtomicFile {
 public:
  // Creates the parent folder if needed; refuses destinations it must not replace.
  explicit AtomicFile(std::string final_path, OutputKind kind = OutputKind::file);
  ~AtomicFile();  // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  // Where to write: the temporary file, or the destination itself when writing through.
  const std::string& temp_path() const { return temp_path_; }
  // The destination as the user gave it: name this in messages.
  const std::string& final_path() const { return final_path_; }
  // True for a character device or FIFO destination of a stream output (no temporary, no rename).
  bool writes_through() const { return write_through_; }
  void commit();  // fsync and rename temp_path() into place (nothing to do when writing through)

 private:
  std::string final_path_;   // as given
  std::string target_path_;  // what is renamed onto (symbolic links resolved)
  std::string temp_path_;
  bool write_through_ = false;
  bool committed_ = false;
  int slot_ = -1;  // in the registry of live temporaries
};

// Writes text to path atomically (or through, to a device or FIFO).
void atomic_write_text(const std::string& path, const std::string& text);

// One rule for every command that writes: refuse, before any work, an output that is one of the
// command's inputs. Files are compared by device and inode, so another spelling of the same path,
// a symbolic link or a hard link counts; an output that does not exist yet passes. The Error
// names the output: "out.h5: is also an input (x.h5); refusing to overwrite it".
// New commands (train, denoise, report, ...) call it with every output and every input file.
void refuse_output_that_is_input(const std::string& output, const std::vector<std::string>& inputs);

// Installs handlers for SIGINT, SIGTERM and SIGHUP that unlink the temporaries of the writes in
// progress (async-signal-safe), print one line and exit with 128 + the signal number (130, 143,
// 129). main() calls it once; idempotent.
void remove_temporaries_on_signal();

}  // namespace ff
