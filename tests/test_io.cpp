// io: AtomicFile, grid files, Gadget/Quijote snapshots. Bad and foreign files are written here with
// the raw HDF5 C API (not with fieldflow's writers), so the readers are checked against files
// built independently of them.
#include <H5PLpublic.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <thread>

#include "error_of.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/csv.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/io/snapshot.hpp"
#include "shell.hpp"

using namespace ff;
namespace fs = std::filesystem;

namespace {

// Files in the folder other than the given names (to spot left-over temporaries).
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class IoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "fieldflow_test_io_XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    h5::initialize();  // silence HDF5's error printing for the raw calls below
  }
  void TearDown() override {
    if (std::getenv("FIELDFLOW_KEEP_TEST_FILES")) return;  // for debugging
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// ---- raw HDF5 writing helpers (independent of fieldflow's writer) ----

struct RawFile {
  hid_t id;
  explicit RawFile(const std::string& p)
      : id(H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {
    EXPECT_GE(id, 0) << p;
  }
  ~RawFile() { H5Fclose(id); }
};

// n == 0: scalar attribute.
void raw_attr(hid_t loc, const char* name, hid_t file_type, hid_t mem_type, const void* data,
              hsize_t n = 0) {
  const hid_t space = n == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr);
  const hid_t a = H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(a, 0) << name;
  ASSERT_GE(H5Awrite(a, mem_type, data), 0) << name;
  H5Aclose(a);
  H5Sclose(space);
}
void raw_attr_double(hid_t loc, const char* name, double v) {
  raw_attr(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

void raw_dataset(hid_t loc, const char* name, hid_t file_type, hid_t mem_type,
                 const std::vector<hsize_t>& dims, const void* data, hid_t dcpl = H5P_DEFAULT) {
  const hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
  const hid_t d = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  ASSERT_GE(d, 0) << name;
  ASSERT_GE(H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0) << name;
  ASSERT_GE(H5Dclose(d), 0) << name;  // chunks are compressed here
  H5Sclose(space);
}

// A grid file written by hand: /delta of the given shape (float32), optional box_size.
void raw_grid(const std::string& p, const std::vector<hsize_t>& dims, const std::vector<float>& v,
              const double* box_size, const char* dataset = "delta") {
  RawFile f(p);
  raw_dataset(f.id, dataset, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, v.data());
  if (box_size) raw_attr_double(f.id, "box_size", *box_size);
  raw_attr_double(f.id, "redshift", 0.0);
}

// ---- AtomicFile ----

TEST_F(IoTest, AtomicFileCommitRenamesIntoPlaceAndLeavesNoTemporary) {
  const std::string target = path("out.txt");
  {
    AtomicFile f(target);
    EXPECT_EQ(fs::path(f.temp_path()).parent_path(), dir_);
    EXPECT_NE(f.temp_path(), target);
    std::ofstream(f.temp_path()) << "hello";
    EXPECT_FALSE(fs::exists(target));  // invisible until commit
    f.commit();
    EXPECT_FALSE(fs::exists(f.temp_path()));
  }
  EXPECT_EQ(read_text(target), "hello");
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"out.txt"});
}

TEST_F(IoTest, AtomicFileRemovesTemporaryWhenNotCommitted) {
  const std::string target = path("never.txt");
  std::string temp;
  {
    AtomicFile f(target);
    temp = f.temp_path();
    std::ofstream(temp) << "partial";
    EXPECT_TRUE(fs::exists(temp));
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(listing(dir_).empty());
}

TEST_F(IoTest, AtomicFileLeavesOldFileIntactWhenAnExceptionInterruptsTheWrite) {
  const std::string target = path("keep.txt");
  atomic_write_text(target, "old");
  EXPECT_THROW(
      {
        AtomicFile f(target);
        std::ofstream(f.temp_path()) << "new but incomplete";
        throw Error(target, "simulated failure while writing");
      },
      Error);
  EXPECT_EQ(read_text(target), "old");
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"keep.txt"});
}

TEST_F(IoTest, AtomicFileCreatesParentFolders) {
  const std::string target = path("a/b/c/out.txt");
  atomic_write_text(target, "deep");
  EXPECT_EQ(read_text(target), "deep");
  atomic_write_text(target, "replaced");
  EXPECT_EQ(read_text(target), "replaced");
  EXPECT_EQ(listing(dir_ / "a/b/c"), std::vector<std::string>{"out.txt"});
}

TEST_F(IoTest, AtomicFileCommitWithoutWritingIsAnError) {
  AtomicFile f(path("empty.txt"));
  EXPECT_NE(error_of([&] { f.commit(); }).find("nothing was written"), std::string::npos);
}

TEST_F(IoTest, AtomicFileWritesTextThroughCharacterDevicesAndLeavesThemInPlace) {
  // Renaming onto /dev/null would replace the machine's /dev/null with a regular file (as root).
  struct stat before {};
  ASSERT_EQ(::stat("/dev/null", &before), 0);
  atomic_write_text("/dev/null", "discarded\n");
  struct stat after {};
  ASSERT_EQ(::stat("/dev/null", &after), 0);
  EXPECT_TRUE(S_ISCHR(after.st_mode));
  EXPECT_EQ(after.st_ino, before.st_ino);
  // A failing device fails with one line naming it.
  if (fs::exists("/dev/full")) {
    EXPECT_EQ(error_of([] { atomic_write_text("/dev/full", "x"); }),
              "/dev/full: cannot write: No space left on device");
  }
}

TEST_F(IoTest, AtomicFileRefusesDevicesForFileOutputsAndNeverRenamesOntoThem) {
  EXPECT_EQ(error_of([] { AtomicFile f("/dev/null"); }),
            "/dev/null: is a character device, not a regular file: this output (HDF5) needs a "
            "file name");
  EXPECT_EQ(error_of([&] { AtomicFile f(dir_.string()); }),
            dir_.string() + ": is an existing folder");
  const std::string fifo = path("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(
      error_of([&] { AtomicFile f(fifo); }).find("is a FIFO (named pipe), not a regular file"),
      std::string::npos);
  // A text output to a FIFO nobody reads is refused rather than hanging.
  EXPECT_EQ(error_of([&] { atomic_write_text(fifo, "x"); }),
            fifo + ": is a FIFO that nobody reads from");
  EXPECT_EQ(listing(dir_), std::vector<std::string>{"pipe"});
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(IoTest, AtomicFileWritesThroughToAFifoWithAReader) {
  const std::string fifo = path("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string received;
  std::thread reader([&] { received = read_text(fifo); });
  // The reader opens asynchronously: retry until it is there (O_NONBLOCK open fails before).
  for (int attempt = 0;; ++attempt) {
    const std::string e = error_of([&] { atomic_write_text(fifo, "through the pipe\n"); });
    if (e == "(no error)") break;
    ASSERT_LT(attempt, 500) << e;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  reader.join();
  EXPECT_EQ(received, "through the pipe\n");
}

TEST_F(IoTest, AtomicFileReplacesTheFileASymbolicLinkPointsToAndKeepsTheLink) {
  atomic_write_text(path("real.txt"), "old");
  fs::create_symlink("real.txt", dir_ / "link.txt");
  atomic_write_text(path("link.txt"), "new");
  EXPECT_TRUE(fs::is_symlink(dir_ / "link.txt"));
  EXPECT_EQ(read_text(path("real.txt")), "new");
  fs::create_symlink("missing.txt", dir_ / "dangling.txt");
  EXPECT_NE(error_of([&] {
              atomic_write_text(path("dangling.txt"), "x");
            }).find("symbolic link to a missing file"),
            std::string::npos);
}

TEST_F(IoTest, AtomicFileRemovesStaleTemporariesOfDeadProcessesOnly) {
  // A dead PID: a child that has exited and been reaped.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = ".out.h5.tmp." + std::to_string(child) + ".0";
  const std::string alive = ".out.h5.tmp." + std::to_string(::getppid()) + ".3";
  const std::string other = ".other.h5.tmp." + std::to_string(child) + ".0";
  for (const std::string& name : {dead, alive, other}) std::ofstream(dir_ / name) << "partial";
  atomic_write_text(path("out.h5"), "done");
  EXPECT_EQ(listing(dir_), (std::vector<std::string>{other, alive, "out.h5"}));  // sorted
}

TEST_F(IoTest, SignalRemovesTheTemporariesOfWritesInProgressAndExits128PlusSignal) {
  for (const int signal_number : {SIGINT, SIGTERM}) {
    const std::string target = path("big.h5");
    const pid_t child = ::fork();
    if (child == 0) {
      ::close(STDERR_FILENO);  // the handler's line is not part of this test's output
      remove_temporaries_on_signal();
      AtomicFile f(target);
      std::ofstream(f.temp_path()) << "half written";
      ::raise(signal_number);
      ::_exit(0);  // not reached
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 128 + signal_number);
    EXPECT_TRUE(listing(dir_).empty()) << listing(dir_).front();
  }
}

TEST_F(IoTest, AnOutputThatIsAnInputIsRefusedWhateverItsName) {
  atomic_write_text(path("in.txt"), "input");
  fs::create_hard_link(dir_ / "in.txt", dir_ / "hard.txt");
  fs::create_symlink(dir_ / "in.txt", dir_ / "soft.txt");
  const std::vector<std::string> inputs{path("other.txt"), path("in.txt")};
  EXPECT_EQ(error_of([&] { refuse_output_that_is_input(path("in.txt"), inputs); }),
            path("in.txt") + ": is also an input of this command; refusing to overwrite it");
  for (const std::string& spelling :
       {path("hard.txt"), path("soft.txt"), (dir_ / "." / "in.txt").string()})
    EXPECT_EQ(error_of([&] { refuse_output_that_is_input(spelling, inputs); }),
              spelling + ": is also an input of this command (" + path("in.txt") +
                  "); refusing to overwrite it");
  EXPECT_EQ(error_of([&] { refuse_output_that_is_input(path("new.txt"), inputs); }), "(no error)");
  EXPECT_EQ(error_of([&] { refuse_output_that_is_input("", inputs); }), "(no error)");
  EXPECT_EQ(read_text(path("in.txt")), "input");
}

TEST_F(IoTest, WriteErrorsNameTheDestinationNotTheTemporary) {
  // HDF5 cannot create the temporary (a folder is in its way): the error names the user's path.
  const std::string target = path("g.h5");
  AtomicFile out(target);
  fs::create_directory(out.temp_path());
  const std::string message = error_of([&] { h5::File::create(out); });
  EXPECT_EQ(message.find(".tmp."), std::string::npos) << message;
  EXPECT_EQ(message.rfind(target + ": cannot create HDF5 file", 0), 0u) << message;
}

TEST_F(IoTest, GridOfAnUnsupportedTypeSaysWhatItHoldsAndWhatIsExpected) {
  for (const auto& [type, words] : std::vector<std::pair<hid_t, std::string>>{
           {H5T_NATIVE_UINT8, "uint8"}, {H5T_NATIVE_INT32, "int32"}}) {
    const std::string p = path("typed.h5");
    const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t dims[3] = {2, 2, 2};
    const hid_t space = H5Screate_simple(3, dims, nullptr);
    const hid_t d = H5Dcreate2(f, "delta", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
    EXPECT_EQ(error_of([&] { inspect_grid_file(p); }),
              p + ": /delta holds " + words + ", expected float32 or float64");
  }
  // float16 and complex (a compound of two floats, as h5py writes numpy's complex64).
  const std::string p = path("half.h5");
  const hid_t f = H5Fcreate(p.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[3] = {2, 2, 2};
  const hid_t space = H5Screate_simple(3, dims, nullptr);
  const hid_t half = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(half, 15, 10, 5, 0, 10);
  H5Tset_size(half, 2);
  H5Tset_ebias(half, 15);
  const hid_t d = H5Dcreate2(f, "delta", half, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t complex = H5Tcreate(H5T_COMPOUND, 8);
  H5Tinsert(complex, "r", 0, H5T_IEEE_F32LE);
  H5Tinsert(complex, "i", 4, H5T_IEEE_F32LE);
  const hid_t g = H5Gcreate2(f, "c", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const hid_t dc = H5Dcreate2(g, "delta", complex, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  for (hid_t id : {dc, d}) H5Dclose(id);
  H5Gclose(g);
  H5Tclose(complex);
  H5Tclose(half);
  H5Sclose(space);
  H5Fclose(f);
  EXPECT_EQ(error_of([&] { inspect_grid_file(p); }),
            p + ": /delta holds float16, expected float32 or float64");
  const h5::File file = h5::File::open(p);
  EXPECT_EQ(file.root().open_dataset("c/delta").type_name(),
            "a compound type (complex numbers or records)");
}

TEST_F(IoTest, AFileLockedByAWriterIsCalledLockedNotDamaged) {
  const std::string p = path("busy.h5");
  write_grid(p, GridF(4, 1.0));
  // Another process holds the file open for writing (HDF5 takes an exclusive lock).
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    const hid_t f = H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const char ok = f >= 0 ? 'y' : 'n';
    ssize_t ignored = ::write(ready[1], &ok, 1);
    (void)ignored;
    ::sleep(30);  // killed by the parent
    ::_exit(0);
  }
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  const std::string message = error_of([&] { inspect_grid_file(p); });
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  if (ok != 'y') GTEST_SKIP() << "cannot open the file for writing in a child";
  if (message == "(no error)") GTEST_SKIP() << "this file system does not lock HDF5 files";
  EXPECT_EQ(message, p + ": is locked by another program that has it open for writing (HDF5 file "
                         "lock); try again when it has finished");
}

// ---- Grid files ----

TEST_F(IoTest, GridRoundTripFloat32IsExact) {
  GridF g(6, 250.0, 1.5);
  for (size_t i = 0; i < g.size(); ++i) g.values[i] = std::sin(0.37f * float(i)) * 3.0f;
  const std::string p = path("g32.h5");
  write_grid(p, g, GridPrecision::float32);
  const GridFileInfo info = inspect_grid_file(p);
  EXPECT_EQ(info.n, 6);
  EXPECT_EQ(info.count, 1);
  EXPECT_FALSE(info.stacked);
  EXPECT_EQ(info.precision, GridPrecision::float32);
  EXPECT_EQ(info.box_size_mpch, 250.0);
  EXPECT_EQ(info.redshift, 1.5);
  const GridF back = read_grid_as<float>(p);
  EXPECT_EQ(back.n, 6);
  EXPECT_EQ(back.box_size_mpch, 250.0);
  EXPECT_EQ(back.redshift, 1.5);
  EXPECT_EQ(back.values, g.values);
  const Grid as_double = read_grid(p);  // converted on read
  for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(as_double.values[i], double(g.values[i]));
}

TEST_F(IoTest, GridRoundTripFloat64IsExactAndFloat32StorageRounds) {
  Grid g(5, 1000.0, 0.0);
  for (size_t i = 0; i < g.size(); ++i) g.values[i] = 1.0 / (1.0 + double(i)) - 0.3;
  const std::string p64 = path("g64.h5"), p32 = path("sub/g32.h5");
  write_grid(p64, g, GridPrecision::float64);
  EXPECT_EQ(inspect_grid_file(p64).precision, GridPrecision::float64);
  EXPECT_EQ(read_grid(p64).values, g.values);
  write_grid(p32, g, GridPrecision::float32);
  const Grid back = read_grid(p32);
  for (size_t i = 0; i < g.size(); ++i) EXPECT_EQ(back.values[i], double(float(g.values[i])));
}

TEST_F(IoTest, GridStacksRoundTripAndRefuseAnIndexOutOfRange) {
  std::vector<GridF> grids;
  for (int m = 0; m < 3; ++m) {
    GridF g(4, 100.0, 2.0);
    for (size_t i = 0; i < g.size(); ++i) g.values[i] = float(m * 1000 + int(i));
    grids.push_back(g);
  }
  const std::string p = path("stack.h5");
  write_grid_stack(p, grids);
  const GridFileInfo info = inspect_grid_file(p);
  EXPECT_TRUE(info.stacked);
  EXPECT_EQ(info.count, 3);
  EXPECT_EQ(info.n, 4);
  EXPECT_EQ(read_grid_as<float>(p, 1).values, grids[1].values);
  EXPECT_EQ(read_grid_as<float>(p, 2).values, grids[2].values);
  const std::vector<Grid> all = read_grid_stack(p);
  ASSERT_EQ(all.size(), 3u);
  for (int m = 0; m < 3; ++m)
    for (size_t i = 0; i < all[m].size(); ++i) EXPECT_EQ(all[m].values[i], grids[m].values[i]);
  EXPECT_EQ(error_of([&] { read_grid(p, 3); }),
            p + ": index 3 out of range: the file holds 3 fields");
  EXPECT_EQ(error_of([&] { read_grid(p, -1); }),
            p + ": index -1 out of range: the file holds 3 fields");
  // A single field accepts only index 0.
  write_grid(path("one.h5"), grids[0]);
  EXPECT_EQ(error_of([&] { read_grid(path("one.h5"), 1); }),
            path("one.h5") + ": index 1 out of range: the file holds 1 field");
  // Members of a stack must agree.
  grids[1].box_size_mpch = 50.0;
  EXPECT_NE(error_of([&] { write_grid_stack(path("bad_stack.h5"), grids); }).find("must share"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(path("bad_stack.h5")));
}

TEST_F(IoTest, GridReadIntoACallersArrayMatchesReadGridAndChecksTheSize) {
  std::vector<GridF> grids(2, GridF(4, 100.0, 1.0));
  for (int m = 0; m < 2; ++m)
    for (size_t i = 0; i < grids[m].size(); ++i) grids[m].values[i] = float(m) - 0.25f * float(i);
  const std::string p = path("stack.h5");
  write_grid_stack(p, grids);
  std::vector<double> values(64);
  const GridFileInfo info = read_grid_into(p, 1, 4, values.data());
  EXPECT_EQ(info.count, 2);
  EXPECT_DOUBLE_EQ(info.box_size_mpch, 100.0);
  EXPECT_EQ(values, read_grid(p, 1).values);
  EXPECT_EQ(error_of([&] { read_grid_into(p, 0, 8, values.data()); }),
            p + ": holds a 4^3 grid, expected 8^3");
  EXPECT_EQ(error_of([&] { read_grid_into(p, 2, 4, values.data()); }),
            p + ": index 2 out of range: the file holds 2 fields");
}

TEST_F(IoTest, IdenticalGridsGiveByteIdenticalFiles) {
  GridF g(4, 100.0, 0.5);
  for (size_t i = 0; i < g.size(); ++i) g.values[i] = 0.1f * float(i);
  write_grid(path("a.h5"), g);
  // HDF5 stamps modification times (in seconds) into object headers unless told not to.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  write_grid(path("b.h5"), g);
  EXPECT_EQ(read_text(path("a.h5")), read_text(path("b.h5")));
}

TEST_F(IoTest, CsvColumnsRoundTripAndBadTablesAreNamed) {
  const std::vector<double> k{0.1, 0.2}, pk{1.5e4, 2.25e3};
  write_csv(path("pk.csv"), {{"k", &k}, {"pk", &pk}});
  const auto columns = read_csv_columns(path("pk.csv"), {"pk", "k"});
  EXPECT_EQ(columns[0], pk);
  EXPECT_EQ(columns[1], k);
  auto write = [&](const std::string& text) {
    std::ofstream(path("bad.csv")) << text;
    return path("bad.csv");
  };
  EXPECT_EQ(error_of([&] { read_csv_columns(path("none.csv"), {"k"}); }),
            path("none.csv") + ": cannot open CSV file");
  EXPECT_EQ(error_of([&] {
              read_csv_columns(write("k,p\n1,2\n"), {"k", "pk"});
            }),
            path("bad.csv") + ": no column \"pk\" in the header");
  EXPECT_EQ(error_of([&] {
              read_csv_columns(write("k,pk\n1,2\n3,fast\n"), {"k", "pk"});
            }),
            path("bad.csv") + ": line 3: column pk holds \"fast\", expected a finite number");
  EXPECT_EQ(error_of([&] {
              read_csv_columns(write("k,pk\n1,nan\n"), {"k", "pk"});
            }),
            path("bad.csv") + ": line 2: column pk holds \"nan\", expected a finite number");
  EXPECT_EQ(error_of([&] { read_csv_columns(write("k,pk\n1\n"), {"k"}); }),
            path("bad.csv") + ": line 2: 1 fields, the header has 2");
  EXPECT_EQ(error_of([&] { read_csv_columns(write("k,pk\n"), {"k"}); }),
            path("bad.csv") + ": no data rows");
}

TEST_F(IoTest, GridReaderRefusesMissingDataset) {
  const std::string p = path("nodelta.h5");
  const double box = 100;
  raw_grid(p, {2, 2, 2}, std::vector<float>(8, 0.f), &box, "density");
  EXPECT_EQ(error_of([&] { read_grid(p); }),
            p + ": no /delta dataset (not a fieldflow grid file?)");
}

TEST_F(IoTest, GridReaderRefusesNonCubicShapeAndWrongRank) {
  const double box = 100;
  const std::string p = path("233.h5");
  raw_grid(p, {2, 3, 3}, std::vector<float>(18, 0.f), &box);
  EXPECT_EQ(error_of([&] { read_grid(p); }), p + ": /delta has shape 2x3x3: the grid is not cubic");
  const std::string p2 = path("rank2.h5");
  raw_grid(p2, {4, 4}, std::vector<float>(16, 0.f), &box);
  EXPECT_EQ(error_of([&] { read_grid(p2); }),
            p2 + ": /delta has shape 4x4, expected [N,N,N] or [M,N,N,N]");
  const std::string p3 = path("stack_noncubic.h5");
  raw_grid(p3, {2, 2, 2, 3}, std::vector<float>(24, 0.f), &box);
  EXPECT_EQ(error_of([&] { read_grid(p3); }),
            p3 + ": /delta has shape 2x2x2x3: the grid is not cubic");
}

TEST_F(IoTest, GridReaderCountsNonFiniteValuesAndNamesTheFirst) {
  const double box = 100;
  const int n = 4;
  std::vector<float> v(n * n * n, 0.25f);
  v[(1 * n + 2) * n + 3] = std::numeric_limits<float>::quiet_NaN();
  v[(3 * n + 0) * n + 1] = std::numeric_limits<float>::infinity();
  v[(3 * n + 3) * n + 3] = std::numeric_limits<float>::quiet_NaN();
  const std::string p = path("nan.h5");
  raw_grid(p, {4, 4, 4}, v, &box);
  EXPECT_EQ(error_of([&] { read_grid(p); }),
            p + ": /delta has 3 non-finite values, the first at (1, 2, 3)");
  EXPECT_EQ(error_of([&] { read_grid_as<float>(p); }),
            p + ": /delta has 3 non-finite values, the first at (1, 2, 3)");
  // In a stack the member is named.
  std::vector<float> s(2 * 8, 0.f);
  s[8 + 5] = std::numeric_limits<float>::quiet_NaN();
  const std::string ps = path("nan_stack.h5");
  raw_grid(ps, {2, 2, 2, 2}, s, &box);
  EXPECT_NO_THROW(read_grid(ps, 0));
  EXPECT_EQ(error_of([&] { read_grid(ps, 1); }),
            ps + ": /delta[1] has 1 non-finite value, the first at (1, 0, 1)");
}

TEST_F(IoTest, GridReaderRefusesMissingOrNonPositiveBoxSize) {
  const std::string p0 = path("box0.h5");
  const double zero = 0.0, negative = -5.0;
  raw_grid(p0, {2, 2, 2}, std::vector<float>(8, 0.f), &zero);
  EXPECT_EQ(error_of([&] { read_grid(p0); }),
            p0 + ": box_size is 0, expected a positive length in Mpc/h");
  const std::string pn = path("boxneg.h5");
  raw_grid(pn, {2, 2, 2}, std::vector<float>(8, 0.f), &negative);
  EXPECT_NE(error_of([&] { read_grid(pn); }).find("expected a positive length"), std::string::npos);
  const std::string pm = path("nobox.h5");
  raw_grid(pm, {2, 2, 2}, std::vector<float>(8, 0.f), nullptr);
  EXPECT_EQ(error_of([&] { read_grid(pm); }), pm + ": missing root attribute box_size (Mpc/h)");
}

TEST_F(IoTest, GridReaderRefusesMissingTruncatedAndForeignFiles) {
  const std::string missing = path("nope.h5");
  EXPECT_EQ(error_of([&] { read_grid(missing); }), missing + ": no such file");

  const std::string text = path("text.h5");
  std::ofstream(text) << "not hdf5 at all\n";
  EXPECT_EQ(error_of([&] { read_grid(text); }), text + ": not an HDF5 file");

  const std::string p = path("truncated.h5");
  const double box = 100;
  raw_grid(p, {16, 16, 16}, std::vector<float>(4096, 1.f), &box);
  fs::resize_file(p, fs::file_size(p) / 2);
  const std::string e = error_of([&] { read_grid(p); });
  EXPECT_EQ(e.rfind(p + ": cannot open as HDF5 (truncated or damaged file?)", 0), 0u) << e;
}

TEST_F(IoTest, GridWriterRefusesNonFiniteValues) {
  Grid g(2, 10.0);
  g.values[3] = std::nan("");
  const std::string p = path("w.h5");
  EXPECT_NE(error_of([&] { write_grid(p, g); }).find("refusing to write 1 non-finite"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(listing(dir_).empty());
}

// ---- Snapshots ----

struct RawSnapshotFile {
  std::vector<std::array<double, 3>> positions;  // file units
  std::vector<std::array<double, 3>> velocities;
  std::vector<uint64_t> ids;
};

struct RawSnapshotStyle {
  bool gadget4 = false;  // uint64 NumPart arrays, cosmology and units in /Parameters
  double box_size = 1e6;
  double unit_length_in_cm = 0;  // 0: not written
  bool blosc = false;
  bool double_positions = false;
  int num_files_attr = -1;  // -1: the number of files written
  std::array<uint32_t, 6> high_word{};
};

// Writes base.{i}.hdf5 for each entry of files, Gadget-2 (int32 NumPart, uint32 IDs) or
// Gadget-4 (uint64 NumPart, uint64 IDs) style, with the raw HDF5 C API.
void write_raw_snapshot(const std::string& base, const std::vector<RawSnapshotFile>& files,
                        const RawSnapshotStyle& style) {
  uint64_t total = 0;
  for (const auto& f : files) total += f.positions.size();
  const int num_files = style.num_files_attr > 0 ? style.num_files_attr : int(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string name = files.size() == 1 && style.num_files_attr <= 1
                                 ? base + ".hdf5"
                                 : base + "." + std::to_string(i) + ".hdf5";
    RawFile file(name);
    const hid_t header = H5Gcreate2(file.id, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const uint64_t count = files[i].positions.size();
    raw_attr_double(header, "BoxSize", style.box_size);
    raw_attr_double(header, "Redshift", 1.0);
    raw_attr_double(header, "Time", 0.5);
    const double mass_table[6] = {0, 65.5, 0, 0, 0, 0};
    raw_attr(header, "MassTable", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, mass_table, 6);
    raw_attr(header, "NumFilesPerSnapshot", H5T_STD_I32LE, H5T_NATIVE_INT32, &num_files);
    if (style.gadget4) {
      const uint64_t this_file[6] = {0, count, 0, 0, 0, 0}, all[6] = {0, total, 0, 0, 0, 0};
      raw_attr(header, "NumPart_ThisFile", H5T_STD_U64LE, H5T_NATIVE_UINT64, this_file, 6);
      raw_attr(header, "NumPart_Total", H5T_STD_U64LE, H5T_NATIVE_UINT64, all, 6);
      const hid_t params = H5Gcreate2(file.id, "Parameters", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      raw_attr_double(params, "Omega0", 0.3175);
      raw_attr_double(params, "OmegaLambda", 0.6825);
      raw_attr_double(params, "HubbleParam", 0.6711);
      if (style.unit_length_in_cm > 0)
        raw_attr_double(params, "UnitLength_in_cm", style.unit_length_in_cm);
      H5Gclose(params);
    } else {
      const int32_t this_file[6] = {0, int32_t(count), 0, 0, 0, 0},
                    all[6] = {0, int32_t(total), 0, 0, 0, 0};
      raw_attr(header, "NumPart_ThisFile", H5T_STD_I32LE, H5T_NATIVE_INT32, this_file, 6);
      raw_attr(header, "NumPart_Total", H5T_STD_U32LE, H5T_NATIVE_INT32, all, 6);
      raw_attr(header, "NumPart_Total_HighWord", H5T_STD_U32LE, H5T_NATIVE_UINT32,
               style.high_word.data(), 6);
      raw_attr_double(header, "Omega0", 0.3175);
      raw_attr_double(header, "OmegaLambda", 0.6825);
      raw_attr_double(header, "HubbleParam", 0.6711);
      if (style.unit_length_in_cm > 0)
        raw_attr_double(header, "UnitLength_in_cm", style.unit_length_in_cm);
    }
    H5Gclose(header);
    const hid_t part = H5Gcreate2(file.id, "PartType1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t dcpl = H5P_DEFAULT;
    if (style.blosc && count > 0) {
      // What Quijote's files carry: Blosc (32001), level 5, bitshuffle (2), zstd (5).
      dcpl = H5Pcreate(H5P_DATASET_CREATE);
      const hsize_t chunk[2] = {std::min<hsize_t>(count, 64), 3};
      H5Pset_chunk(dcpl, 2, chunk);
      const unsigned cd[7] = {0, 0, 0, 0, 5, 2, 5};
      EXPECT_GE(H5Pset_filter(dcpl, 32001, H5Z_FLAG_MANDATORY, 7, cd), 0);
    }
    const hid_t real_type = style.double_positions ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
    raw_dataset(part, "Coordinates", real_type, H5T_NATIVE_DOUBLE, {count, 3},
                files[i].positions.data(), dcpl);
    raw_dataset(part, "Velocities", real_type, H5T_NATIVE_DOUBLE, {count, 3},
                files[i].velocities.data(), dcpl);
    if (dcpl != H5P_DEFAULT) H5Pclose(dcpl);
    raw_dataset(part, "ParticleIDs", style.gadget4 ? H5T_STD_U64LE : H5T_STD_U32LE,
                H5T_NATIVE_UINT64, {count}, files[i].ids.data());
    H5Gclose(part);
  }
}

// Two files of a 1 Gpc/h box in kpc/h, with positions on and outside the box edges.
std::vector<RawSnapshotFile> two_files_kpc() {
  RawSnapshotFile a, b;
  a.positions = {{0, 0, 0}, {1e6, 5e5, 250000.5}, {-1000, 1.5e6, 999999.0}};
  b.positions = {{123456.0, 654321.0, 1.0}, {500000.0, 0.0, 2e6 - 1}};
  for (auto* f : {&a, &b}) {
    for (size_t i = 0; i < f->positions.size(); ++i) {
      f->velocities.push_back({double(i), -double(i), 0.5});
    }
  }
  a.ids = {10, 11, 12};
  b.ids = {20, 4000000000u};
  return {a, b};
}
// The positions above in Mpc/h, wrapped into [0, 1000).
const std::vector<std::array<double, 3>> kExpectedMpch = {{0, 0, 0},
                                                          {0, 500, 250.0005},
                                                          {999, 500, 999.999},
                                                          {123.456, 654.321, 0.001},
                                                          {500, 0, 999.999}};

void expect_positions(const std::vector<std::array<double, 3>>& got, double tolerance) {
  ASSERT_EQ(got.size(), kExpectedMpch.size());
  for (size_t i = 0; i < got.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      EXPECT_NEAR(got[i][d], kExpectedMpch[i][d], tolerance) << "particle " << i << " axis " << d;
      EXPECT_GE(got[i][d], 0.0);
      EXPECT_LT(got[i][d], 1000.0);
    }
}

TEST_F(IoTest, Gadget2TwoFileSnapshotInKpcReadsBackInMpc) {
  const std::string base = path("snapdir_004/snap_004");
  fs::create_directories(path("snapdir_004"));
  write_raw_snapshot(base, two_files_kpc(), {});
  for (const std::string& given : {base, base + ".hdf5", base + ".0.hdf5", base + ".1.hdf5"}) {
    SnapshotReader r(given);
    EXPECT_EQ(r.files(), (std::vector<std::string>{base + ".0.hdf5", base + ".1.hdf5"})) << given;
    EXPECT_EQ(r.particle_count(), 5u);
  }
  SnapshotReader r(base);
  const SnapshotHeader& h = r.header();
  EXPECT_EQ(h.box_size_file_units, 1e6);
  EXPECT_EQ(h.box_size_mpch, 1000.0);
  EXPECT_EQ(h.redshift, 1.0);
  EXPECT_EQ(h.time, 0.5);
  EXPECT_EQ(h.omega_m, 0.3175);
  EXPECT_EQ(h.omega_lambda, 0.6825);
  EXPECT_EQ(h.hubble_param, 0.6711);
  EXPECT_EQ(h.num_files, 2);
  EXPECT_EQ(h.num_part_total[1], 5u);
  EXPECT_EQ(r.particle_mass(), 65.5);
  EXPECT_EQ(r.length_unit(), LengthUnit::kpc_h);
  EXPECT_EQ(r.length_unit_reason(), "BoxSize 1e+06 > 5000: assumed kpc/h");
  // float32 storage: 250000.5 and 999999 are exact in float32, so 1e-9 suffices.
  expect_positions(r.read_positions_mpch(), 1e-9);
  EXPECT_EQ(r.read_ids(), (std::vector<uint64_t>{10, 11, 12, 20, 4000000000u}));
  const auto v = r.read_velocities();
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[2][0], 2.0);
  EXPECT_EQ(v[2][1], -2.0);
  EXPECT_EQ(v[4][2], 0.5);
}

TEST_F(IoTest, Gadget4TwoFileSnapshotWithParametersAndUint64Counts) {
  // BoxSize 2000 kpc/h would look like Mpc/h to the heuristic: UnitLength_in_cm must win.
  auto files = two_files_kpc();
  for (auto& f : files)
    for (auto& p : f.positions)
      for (double& x : p) x /= 500.0;  // same layout in a 2000 kpc/h box
  const std::string base = path("snap_010");
  RawSnapshotStyle style;
  style.gadget4 = true;
  style.box_size = 2000.0;
  style.unit_length_in_cm = 3.085678e21;
  style.double_positions = true;
  write_raw_snapshot(base, files, style);
  SnapshotReader r(base + ".0.hdf5");
  EXPECT_EQ(r.particle_count(), 5u);
  EXPECT_EQ(r.length_unit(), LengthUnit::kpc_h);
  EXPECT_EQ(r.length_unit_reason(), "UnitLength_in_cm 3.08568e+21");
  EXPECT_EQ(r.header().box_size_mpch, 2.0);
  EXPECT_EQ(r.header().omega_m, 0.3175);  // from /Parameters
  EXPECT_EQ(r.header().hubble_param, 0.6711);
  const auto pos = r.read_positions_mpch();
  ASSERT_EQ(pos.size(), 5u);
  for (size_t i = 0; i < pos.size(); ++i)
    for (int d = 0; d < 3; ++d) EXPECT_NEAR(pos[i][d], kExpectedMpch[i][d] / 500.0, 1e-12);
  EXPECT_EQ(r.read_ids().back(), 4000000000u);
}

TEST_F(IoTest, LengthUnitDetectionAndOverride) {
  const std::string base = path("snap");
  write_raw_snapshot(base, two_files_kpc(), {});
  SnapshotReader forced(base, LengthUnit::mpc_h);
  EXPECT_EQ(forced.length_unit(), LengthUnit::mpc_h);
  EXPECT_EQ(forced.length_unit_reason(), "set by --length-unit");
  EXPECT_EQ(forced.header().box_size_mpch, 1e6);
  EXPECT_EQ(forced.read_positions_mpch()[3][0], double(float(123456.0)));

  // A small box in Mpc/h without units: the heuristic says Mpc/h.
  RawSnapshotFile f;
  f.positions = {{1.0, 2.0, 2999.5}};
  f.velocities = {{0, 0, 0}};
  f.ids = {1};
  RawSnapshotStyle mpc;
  mpc.box_size = 3000.0;
  write_raw_snapshot(path("small"), {f}, mpc);
  SnapshotReader small(path("small.hdf5"));
  EXPECT_EQ(small.files(), std::vector<std::string>{path("small.hdf5")});
  EXPECT_EQ(small.length_unit(), LengthUnit::mpc_h);
  EXPECT_EQ(small.length_unit_reason(), "BoxSize 3000 <= 5000: assumed Mpc/h");
  EXPECT_EQ(small.read_positions_mpch()[0][2], 2999.5);
  SnapshotReader small_kpc(path("small"), LengthUnit::kpc_h);
  EXPECT_EQ(small_kpc.header().box_size_mpch, 3.0);
  EXPECT_EQ(small_kpc.read_positions_mpch()[0][0], 0.001);

  // UnitLength_in_cm in Mpc beats the heuristic; an unknown unit is refused.
  mpc.box_size = 8000.0;
  mpc.unit_length_in_cm = 3.085678e24;
  write_raw_snapshot(path("big_mpc"), {f}, mpc);
  EXPECT_EQ(SnapshotReader(path("big_mpc")).length_unit(), LengthUnit::mpc_h);
  mpc.unit_length_in_cm = 3.085678e18;
  write_raw_snapshot(path("pc"), {f}, mpc);
  EXPECT_NE(error_of([&] { SnapshotReader r(path("pc")); }).find("neither kpc"), std::string::npos);
  EXPECT_EQ(SnapshotReader(path("pc"), LengthUnit::kpc_h).header().box_size_mpch, 8.0);
}

TEST_F(IoTest, ParseLengthUnit) {
  EXPECT_EQ(parse_length_unit("auto"), LengthUnit::automatic);
  EXPECT_EQ(parse_length_unit("KPC/h"), LengthUnit::kpc_h);
  EXPECT_EQ(parse_length_unit("Mpc/h"), LengthUnit::mpc_h);
  EXPECT_EQ(parse_length_unit("mpc/H"), LengthUnit::mpc_h);
  EXPECT_EQ(error_of([] { parse_length_unit("km"); }),
            "--length-unit: expected auto, kpc/h or mpc/h, got \"km\"");
  EXPECT_STREQ(to_string(LengthUnit::kpc_h), "kpc/h");
  EXPECT_STREQ(to_string(LengthUnit::mpc_h), "Mpc/h");
  EXPECT_STREQ(to_string(LengthUnit::automatic), "auto");
  for (LengthUnit u : {LengthUnit::automatic, LengthUnit::kpc_h, LengthUnit::mpc_h})
    EXPECT_EQ(parse_length_unit(to_string(u)), u);
}

TEST_F(IoTest, SnapshotReaderRefusesMissingPartsAndInconsistentCounts) {
  const std::string base = path("snap_001");
  RawSnapshotStyle style;
  style.num_files_attr = 3;  // promises three files, writes two
  write_raw_snapshot(base, two_files_kpc(), style);
  EXPECT_EQ(error_of([&] { SnapshotReader r(base); }),
            base + ".2.hdf5: missing part 2 of a snapshot in 3 files (NumFilesPerSnapshot in " +
                base + ".0.hdf5)");

  const std::string base2 = path("snap_002");
  RawSnapshotStyle high;
  high.high_word[1] = 1;  // claims 2^32 + 5 particles
  write_raw_snapshot(base2, two_files_kpc(), high);
  EXPECT_EQ(error_of([&] { SnapshotReader r(base2); }),
            base2 +
                ".0.hdf5: NumPart_ThisFile of type 1 adds up to 5 over 2 file(s), but "
                "NumPart_Total is 4294967301");

  EXPECT_EQ(error_of([&] { SnapshotReader r(path("none")); }),
            path("none") + ": no such snapshot: neither " + path("none") + ".hdf5 nor " +
                path("none") + ".0.hdf5 exists");
  const std::string grid = path("grid.h5");
  write_grid(grid, Grid(2, 1.0));
  EXPECT_EQ(error_of([&] { SnapshotReader r(grid); }),
            grid + ": no /Header group (not a Gadget snapshot?)");
}

TEST_F(IoTest, SnapshotPathFormsAndSingleFilesWithDotsInTheirNames) {
  RawSnapshotFile f;
  f.positions = {{1.0, 2.0, 3.0}};
  f.velocities = {{0, 0, 0}};
  f.ids = {1};
  write_raw_snapshot(path("box.2020"), {f}, {});  // box.2020.hdf5: a whole snapshot, not a part
  SnapshotReader r(path("box.2020.hdf5"));
  EXPECT_EQ(r.files(), std::vector<std::string>{path("box.2020.hdf5")});
  EXPECT_EQ(SnapshotReader(path("box.2020")).files(), r.files());
  // A file that says it is one of two but is not named BASE.{i}.hdf5.
  const std::string lone = path("lone.hdf5");
  write_raw_snapshot(path("pair"), two_files_kpc(), {});
  fs::copy_file(path("pair.0.hdf5"), lone);
  EXPECT_EQ(
      error_of([&] { SnapshotReader x(lone); }),
      lone + ": NumFilesPerSnapshot is 2 but the file is not named BASE.0.hdf5, BASE.1.hdf5, ...");
}

TEST_F(IoTest, BloscCompressedSnapshotReadsBackExactly) {
  if (!h5::filter_available(h5::kBloscFilter))
    GTEST_SKIP() << "HDF5 Blosc filter 32001 not available (install "
                    "hdf5-filter-plugin-blosc-serial)";
  // 200 particles on a lattice (compressible, as real snapshots are in bitshuffled bits),
  // chunks of 64 rows with a partial last chunk.
  RawSnapshotFile f;
  for (int i = 0; i < 200; ++i) {
    f.positions.push_back({1000.0 * (i % 10) + 0.25, 999999.0 - 1000.0 * (i / 10), 3.5 * (i % 7)});
    f.velocities.push_back({-1.0 * (i % 5), 2.0 * (i % 3), 0.125 * (i % 4)});
    f.ids.push_back(uint64_t(i) * 7);
  }
  RawSnapshotStyle style;
  style.blosc = true;
  style.gadget4 = true;
  write_raw_snapshot(path("blosc"), {f}, style);
  // The test file really is Blosc-compressed.
  {
    const h5::File file = h5::File::open(path("blosc.hdf5"));
    const h5::Dataset d = file.root().open_dataset("PartType1/Coordinates");
    const hid_t dcpl = H5Dget_create_plist(d.id());
    ASSERT_EQ(H5Pget_nfilters(dcpl), 1);
    unsigned flags = 0, config = 0;
    size_t nelem = 0;
    EXPECT_EQ(H5Pget_filter2(dcpl, 0, &flags, &nelem, nullptr, 0, nullptr, &config), 32001);
    H5Pclose(dcpl);
    EXPECT_LT(H5Dget_storage_size(d.id()), 200u * 3 * sizeof(float));  // really compressed
  }
  SnapshotReader r(path("blosc"));
  const auto pos = r.read_positions_mpch();
  const auto vel = r.read_velocities();
  ASSERT_EQ(pos.size(), 200u);
  for (size_t i = 0; i < 200; ++i) {
    for (int d = 0; d < 3; ++d) {
      EXPECT_EQ(pos[i][d], double(float(f.positions[i][d])) / 1000.0);
      EXPECT_EQ(vel[i][d], double(float(f.velocities[i][d])));
    }
  }
  EXPECT_EQ(r.read_ids(), f.ids);

  // Without the plugin the error names the file, the dataset and the filter.
  H5Zunregister(h5::kBloscFilter);
  H5PLset_loading_state(0);
  const std::string e = error_of([&] { SnapshotReader r2(path("blosc")); });
  H5PLset_loading_state(H5PL_ALL_PLUGIN);
  EXPECT_EQ(e.rfind(path("blosc.hdf5") + ": /PartType1/Coordinates: needs HDF5 filter 32001", 0),
            0u)
      << e;
  EXPECT_NE(e.find("hdf5-filter-plugin-blosc-serial"), std::string::npos) << e;
  EXPECT_TRUE(h5::filter_available(h5::kBloscFilter));  // loads again
}

TEST_F(IoTest, ForEachPositionChunkHonoursMaxChunkAndCoversEveryParticle) {
  RawSnapshotFile a, b;
  for (int i = 0; i < 7; ++i) a.positions.push_back({1000.0 * i, 1.0, 2.0});
  for (int i = 0; i < 5; ++i) b.positions.push_back({3.0, 1000.0 * i, 4.0});
  for (auto* f : {&a, &b}) {
    f->velocities.assign(f->positions.size(), {0, 0, 0});
    for (size_t i = 0; i < f->positions.size(); ++i) f->ids.push_back(i);
  }
  write_raw_snapshot(path("chunks"), {a, b}, {});
  SnapshotReader r(path("chunks"));
  std::vector<size_t> sizes;
  std::vector<std::array<double, 3>> all;
  r.for_each_position_chunk(
      [&](std::span<const std::array<double, 3>> chunk) {
        sizes.push_back(chunk.size());
        all.insert(all.end(), chunk.begin(), chunk.end());
      },
      3);
  // Chunks never span files: 7 = 3 + 3 + 1, then 5 = 3 + 2.
  EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 1, 3, 2}));
  ASSERT_EQ(all.size(), 12u);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(all[i][0], double(i));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all[7 + i][1], double(i));
  EXPECT_EQ(all, r.read_positions_mpch());
}

TEST_F(IoTest, WriteSnapshotRoundTripsOverThreeFiles) {
  const size_t n = 101;
  std::vector<std::array<double, 3>> pos(n), vel(n);
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) {
    pos[i] = {std::fmod(9.73 * i, 500.0), std::fmod(3.1 * i * i, 500.0), 499.99 * (i % 2)};
    vel[i] = {0.5 * i, -1.0 * i, 100.0};
    ids[i] = (uint64_t(1) << 40) + i;
  }
  pos[7] = {500.0, -0.5, 1000.25};  // outside: wrapped on write
  SnapshotHeader h;
  h.box_size_mpch = 500.0;
  h.redshift = 0.5;
  h.time = 1.0 / 1.5;
  h.omega_m = 0.3;
  h.omega_lambda = 0.7;
  h.hubble_param = 0.68;
  h.mass_table[1] = 12.5;
  for (bool blosc : {false, true}) {
    if (blosc && !h5::filter_available(h5::kBloscFilter)) continue;
    SnapshotWriteOptions opts;
    opts.num_files = 3;
    opts.blosc_compression = blosc;
    opts.double_precision = blosc;  // double + Blosc: must come back exactly
    const std::string base = path(blosc ? "out/blosc_000" : "out/snap_000");
    write_snapshot(base, h, pos, vel, ids, opts);
    EXPECT_EQ(listing(dir_ / "out").size(), blosc ? 6u : 3u);  // no temporaries left
    SnapshotReader r(base);
    ASSERT_EQ(r.files().size(), 3u);
    EXPECT_EQ(r.files()[2], base + ".2.hdf5");
    EXPECT_EQ(r.particle_count(), n);
    EXPECT_EQ(r.length_unit(), LengthUnit::kpc_h);
    EXPECT_EQ(r.header().box_size_file_units, 500000.0);
    EXPECT_EQ(r.header().box_size_mpch, 500.0);
    EXPECT_EQ(r.header().redshift, 0.5);
    EXPECT_EQ(r.header().time, 1.0 / 1.5);
    EXPECT_EQ(r.header().omega_m, 0.3);
    EXPECT_EQ(r.header().omega_lambda, 0.7);
    EXPECT_EQ(r.header().hubble_param, 0.68);
    EXPECT_EQ(r.header().num_files, 3);
    EXPECT_EQ(r.particle_mass(), 12.5);
    const auto p = r.read_positions_mpch();
    const auto v = r.read_velocities();
    ASSERT_EQ(p.size(), n);
    for (size_t i = 0; i < n; ++i) {
      std::array<double, 3> expected = pos[i];
      if (i == 7) expected = {0.0, 499.5, 0.25};
      for (int d = 0; d < 3; ++d) {
        // float32 in kpc/h: relative 6e-8 of 5e5 kpc/h = 0.03 kpc/h = 3e-5 Mpc/h.
        // Periodic distance: a value within float rounding of L may come back as 0.
        const double diff = std::abs(p[i][d] - expected[d]);
        EXPECT_LE(std::min(diff, 500.0 - diff), blosc ? 1e-12 : 4e-5) << i;
        EXPECT_EQ(v[i][d], vel[i][d]);
      }
    }
    EXPECT_EQ(r.read_ids(), ids);
  }
  // Mpc/h units, one file: base.hdf5, detected through UnitLength_in_cm.
  SnapshotWriteOptions mpc;
  mpc.unit = LengthUnit::mpc_h;
  write_snapshot(path("one/snap"), h, pos, vel, ids, mpc);
  SnapshotReader r(path("one/snap.hdf5"));
  EXPECT_EQ(r.files(), std::vector<std::string>{path("one/snap.hdf5")});
  EXPECT_EQ(r.length_unit(), LengthUnit::mpc_h);
  EXPECT_EQ(r.header().box_size_file_units, 500.0);
  EXPECT_NEAR(r.read_positions_mpch()[10][1], pos[10][1], 1e-4);
}

TEST_F(IoTest, WriteSnapshotSpansSeveralWriteBlocks) {
  // The writer converts and writes 2^20 rows at a time: cross that boundary.
  const size_t n = (size_t(1) << 20) + 4097;
  std::vector<std::array<double, 3>> pos(n), vel(n);
  std::vector<uint64_t> ids(n);
  for (size_t i = 0; i < n; ++i) {
    pos[i] = {double(i % 1000) * 0.25, double(i / 1000) * 0.2, 1.0};
    vel[i] = {double(i), 0.0, -1.0};
    ids[i] = i;
  }
  SnapshotHeader h;
  h.box_size_mpch = 250.0;
  h.mass_table[1] = 1.0;
  write_snapshot(path("big"), h, pos, vel, ids);
  SnapshotReader r(path("big"));
  ASSERT_EQ(r.particle_count(), n);
  size_t seen = 0;
  bool all_match = true;
  r.for_each_position_chunk([&](std::span<const std::array<double, 3>> chunk) {
    for (const auto& p : chunk) {
      const size_t i = seen++;
      // Written as float32 kpc/h: exact for these values up to float rounding.
      const double x = double(float(pos[i][0] * 1000.0)) / 1000.0;
      const double y = std::fmod(double(float(pos[i][1] * 1000.0)) / 1000.0, 250.0);
      all_match = all_match && p[0] == x && p[1] == y && p[2] == 1.0;
    }
  });
  EXPECT_EQ(seen, n);
  EXPECT_TRUE(all_match);
  const auto v = r.read_velocities();
  EXPECT_EQ(v[n - 1][0], double(float(n - 1)));
  EXPECT_EQ(v[(size_t(1) << 20)][2], -1.0);
  EXPECT_EQ(r.read_ids()[n - 1], n - 1);
}

TEST_F(IoTest, ParticleMassFallsBackToTheMassesDataset) {
  const std::string p = path("masses.hdf5");
  {
    RawFile f(p);
    const hid_t header = H5Gcreate2(f.id, "Header", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    raw_attr_double(header, "BoxSize", 100.0);
    const double mt[6] = {0, 0, 0, 0, 0, 0};
    raw_attr(header, "MassTable", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, mt, 6);
    const int32_t one = 1, np[6] = {0, 2, 0, 0, 0, 0};
    raw_attr(header, "NumFilesPerSnapshot", H5T_STD_I32LE, H5T_NATIVE_INT32, &one);
    raw_attr(header, "NumPart_ThisFile", H5T_STD_I32LE, H5T_NATIVE_INT32, np, 6);
    raw_attr(header, "NumPart_Total", H5T_STD_I32LE, H5T_NATIVE_INT32, np, 6);
    H5Gclose(header);
    const hid_t part = H5Gcreate2(f.id, "PartType1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const float xyz[6] = {1, 2, 3, 4, 5, 6}, masses[2] = {0.75f, 0.75f};
    raw_dataset(part, "Coordinates", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 3}, xyz);
    raw_dataset(part, "Masses", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2}, masses);
    H5Gclose(part);
  }
  SnapshotReader r(p);
  EXPECT_EQ(r.particle_mass(), 0.75);
  EXPECT_EQ(r.header().time, 1.0);  // no Time or Redshift: a = 1
}

// ---- HDF5 helpers ----

TEST_F(IoTest, Hdf5HelpersRoundTripAttributesAndRowSlabs) {
  const std::string p = path("h.h5");
  {
    h5::File f = h5::File::create(p);
    h5::Group g = f.root().create_group("a/b");
    g.write_attribute("x", 2.5);
    g.write_attribute("n", int64_t(-7));
    g.write_attribute_string("name", "flow v1");
    g.write_attribute_array("v", std::vector<uint32_t>{1, 2, 3});
    g.write_attribute("x", 3.5);  // replaces
    h5::Dataset d = g.create_dataset("data", h5::ElementType::float32, {10, 2},
                                     h5::DatasetOptions{.chunk_rows = 4, .deflate_level = 3});
    std::vector<double> rows(10 * 2);
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = double(i) * 0.5;
    d.write_rows(0, 6, rows.data());
    d.write_rows(6, 4, rows.data() + 12);
    f.close();
  }
  const h5::File f = h5::File::open(p);
  EXPECT_TRUE(f.root().has("a/b/data"));
  EXPECT_FALSE(f.root().has("a/c/data"));
  const h5::Group g = f.root().open_group("a/b");
  EXPECT_EQ(g.children(), (std::vector<std::string>{"data"}));
  EXPECT_EQ(g.attribute_names(), (std::vector<std::string>{"n", "name", "v", "x"}));
  EXPECT_EQ(g.read_attribute<double>("x"), 3.5);
  EXPECT_EQ(g.read_attribute<int32_t>("n"), -7);
  EXPECT_EQ(g.read_attribute_string("name"), "flow v1");
  EXPECT_EQ(g.read_attribute_array<uint64_t>("v"), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(error_of([&] { g.read_attribute<double>("v"); }),
            p + ": /a/b: attribute v has 3 elements, expected one");
  EXPECT_EQ(error_of([&] { g.read_attribute<double>("missing"); }),
            p + ": /a/b: missing attribute missing");
  const h5::Dataset d = g.open_dataset("data");
  EXPECT_EQ(d.shape(), (std::vector<hsize_t>{10, 2}));
  EXPECT_EQ(d.stored_type(), h5::ElementType::float32);
  std::vector<float> slab(3 * 2);
  d.read_rows(5, 3, slab.data());
  for (size_t i = 0; i < slab.size(); ++i) EXPECT_EQ(slab[i], float(10 + i) * 0.5f);
  EXPECT_NE(error_of([&] { d.read_rows(8, 3, slab.data()); }).find("out of range"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { f.root().open_dataset("nope"); }), p + ": missing dataset /nope");
}

}  // namespace
