// TlsProbes without a kernel: a fake attacher records what would be attached, and a fake
// /proc tree in a temporary directory stands for the processes. Real ELF files (libssl,
// node, /bin/true) are copied, hard-linked or symlinked into it.
//
//   TMP/proc/PID/exe            -> "/bin/app"          (a dangling symlink: only its text matters)
//   TMP/proc/PID/root/bin/app   the file the process runs (open path = root + exe text)
//   TMP/proc/PID/maps           "addr r-xp off dev inode /path" lines
//   TMP/libA, TMP/libB          library directories
#include "tls/tls_probes.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kspan::tls {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr char kLibssl[] = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
constexpr char kNode[] = "/usr/bin/node";
constexpr char kTrue[] = "/bin/true";
constexpr milliseconds kWait{60000};  // WaitIdle bound: node's symbol table is large

class FakeAttacher : public UprobeAttacher {
 public:
  struct Call {
    std::string path;
    std::vector<events::UprobeSpec> specs;
    uint64_t handle;
  };
  Result<uint64_t> Attach(const std::string& path, const std::vector<events::UprobeSpec>& specs) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_) return PermissionDenied("fake attacher told to fail: " + path);
    if (refuse_ && refuse_(path)) return NotFound("fake attacher: no such file " + path);
    attached_.push_back({path, specs, next_});
    return next_++;
  }
  void Detach(uint64_t handle) override {
    std::lock_guard<std::mutex> lock(mu_);
    detached_.push_back(handle);
  }
  void set_fail(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = fail;
  }
  // Called for each path before attaching; true fails that attach (as the kernel does
  // for a path that is gone).
  void set_refuse(std::function<bool(const std::string&)> refuse) {
    std::lock_guard<std::mutex> lock(mu_);
    refuse_ = std::move(refuse);
  }
  std::vector<Call> attached() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attached_;
  }
  std::vector<uint64_t> detached() const {
    std::lock_guard<std::mutex> lock(mu_);
    return detached_;
  }

 private:
  mutable std::mutex mu_;
  bool fail_ = false;
  std::function<bool(const std::string&)> refuse_;
  uint64_t next_ = 100;
  std::vector<Call> attached_;
  std::vector<uint64_t> detached_;
};

// Polls `done` until it holds or `timeout` passes (for what the sweep does on its own).
template <typename F>
bool Eventually(F done, milliseconds timeout = milliseconds(5000)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return done();
}

class TlsProbesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kspan-tlsprobes-XXXXXX";
    root_ = mkdtemp(tmpl);
    proc_ = root_ + "/proc";
    lib_a_ = root_ + "/libA";
    lib_b_ = root_ + "/libB";
    for (const auto& d : {proc_, lib_a_, lib_b_}) fs::create_directories(d);
    options_.proc_root = proc_;
    options_.library_dirs = {lib_a_, lib_b_};
    options_.sweep_interval = milliseconds(3'600'000);  // tests that want sweeps say so
  }
  void TearDown() override {
    probes_.reset();  // joins the thread before the files go
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  TlsProbes& Make() {
    probes_ = std::make_unique<TlsProbes>(options_, &attacher_, &metrics_);
    return *probes_;
  }

  // A process: exe names `exe` (as the kernel would: a path in the process's root), the
  // file there is `source` copied, symlinked or hard-linked; `maps` lists mapped paths.
  enum class Place { kCopy, kSymlink, kHardLink };
  std::string Process(uint32_t pid, const std::string& exe, const std::string& source, Place place,
                      const std::vector<std::string>& mapped = {}) {
    const std::string dir = proc_ + "/" + std::to_string(pid);
    fs::create_directories(dir + "/root");
    EXPECT_EQ(symlink(exe.c_str(), (dir + "/exe").c_str()), 0);
    const std::string open_path = Put(pid, exe, source, place);
    std::vector<std::string> maps = {exe};
    maps.insert(maps.end(), mapped.begin(), mapped.end());
    WriteMaps(pid, maps);
    return open_path;
  }
  // Places `source` at `path` inside the process's root; returns where kspan opens it.
  std::string Put(uint32_t pid, const std::string& path, const std::string& source, Place place) {
    const std::string at = proc_ + "/" + std::to_string(pid) + "/root" + path;
    fs::create_directories(fs::path(at).parent_path());
    switch (place) {
      case Place::kCopy: fs::copy_file(source, at, fs::copy_options::overwrite_existing); break;
      case Place::kSymlink: EXPECT_EQ(symlink(source.c_str(), at.c_str()), 0); break;
      case Place::kHardLink: EXPECT_EQ(link(source.c_str(), at.c_str()), 0) << source; break;
    }
    return at;
  }
  void WriteMaps(uint32_t pid, const std::vector<std::string>& paths) {
    std::ofstream maps(proc_ + "/" + std::to_string(pid) + "/maps");
    uint64_t addr = 0x400000;
    uint64_t inode = 1000;
    for (const std::string& p : paths) {
      char line[512];
      snprintf(line, sizeof(line), "%012lx-%012lx r--p 00000000 fe:01 %lu %s\n", addr, addr + 0x1000, inode,
               p.c_str());
      maps << line;
      snprintf(line, sizeof(line), "%012lx-%012lx r-xp 00001000 fe:01 %lu %s\n", addr + 0x1000, addr + 0x5000,
               inode, p.c_str());
      maps << line;
      addr += 0x100000;
      ++inode;
    }
    // Lines kspan must skip: anonymous, pseudo-files, non-executable, zero inode.
    maps << "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]\n"
         << "7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]\n"
         << "7f0000000000-7f0000001000 r-xp 00000000 00:00 0 \n";
  }
  uint64_t NotCaptured(const std::string& binary, const std::string& reason) {
    return metrics_.GetCounter("kspan_tls_not_captured_total", {{"binary", binary}, {"reason", reason}})
        ->Value();
  }
  uint64_t Counter(const std::string& name) { return metrics_.Sum(name); }

  std::string root_, proc_, lib_a_, lib_b_;
  TlsProbeOptions options_;
  FakeAttacher attacher_;
  metrics::Registry metrics_;
  std::unique_ptr<TlsProbes> probes_;
};

// ---- start: library directories -------------------------------------------------------

TEST_F(TlsProbesTest, StartAttachesLibsslInALibraryDirOnce) {
  fs::copy_file(kLibssl, lib_a_ + "/libssl.so.3");
  // The same file under another name in another directory: one file, one attach.
  ASSERT_EQ(link((lib_a_ + "/libssl.so.3").c_str(), (lib_b_ + "/libssl.so.3.0.alias").c_str()), 0);
  // Not a libssl name: not looked at.
  fs::copy_file(kTrue, lib_a_ + "/libcrypto.so.3");
  TlsProbes& p = Make();
  p.Start();
  const auto calls = attacher_.attached();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].path, lib_a_ + "/libssl.so.3");
  EXPECT_FALSE(calls[0].specs.empty());
  EXPECT_EQ(p.probed_files(), 1u);
  EXPECT_EQ(Counter("kspan_tls_files_probed_total"), 1u);
  EXPECT_EQ(Counter("kspan_tls_files_attach_failed_total"), 0u);
  EXPECT_TRUE(attacher_.detached().empty());
}

TEST_F(TlsProbesTest, SymlinkedLibsslIsTheSameFile) {
  fs::copy_file(kLibssl, lib_a_ + "/libssl.so.3");
  ASSERT_EQ(symlink((lib_a_ + "/libssl.so.3").c_str(), (lib_b_ + "/libssl.so").c_str()), 0);
  Make().Start();
  EXPECT_EQ(attacher_.attached().size(), 1u);
}

TEST_F(TlsProbesTest, NonElfAndTlsLessFilesNamedLibsslAreNotAttached) {
  std::ofstream(lib_a_ + "/libssl.so.1.1") << "not an ELF file at all, but named like one";
  fs::copy_file(kTrue, lib_a_ + "/libssl.so.2");  // ELF without SSL_read
  fs::create_directories(lib_a_ + "/libssl.so.dir");
  std::ofstream(lib_b_ + "/libssl.so.0");  // empty
  options_.library_dirs.push_back(root_ + "/no-such-dir");
  TlsProbes& p = Make();
  p.Start();
  EXPECT_TRUE(attacher_.attached().empty());
  EXPECT_EQ(p.probed_files(), 0u);
  EXPECT_EQ(Counter("kspan_tls_files_attach_failed_total"), 0u);
}

// ---- sweep ----------------------------------------------------------------------------

TEST_F(TlsProbesTest, RemovedLibraryIsDetachedAtTheNextSweep) {
  fs::copy_file(kLibssl, lib_a_ + "/libssl.so.3");
  options_.sweep_interval = milliseconds(50);
  TlsProbes& p = Make();
  p.Start();
  const auto calls = attacher_.attached();
  ASSERT_EQ(calls.size(), 1u);
  const uint64_t handle = calls[0].handle;
  // Sweeps while the file is there leave it alone. An observation window of about four
  // sweeps (50 ms apart), not a wait for an event: an absence cannot be waited for.
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_TRUE(attacher_.detached().empty());
  fs::remove(lib_a_ + "/libssl.so.3");
  ASSERT_TRUE(Eventually([&] { return !attacher_.detached().empty(); }));
  EXPECT_EQ(attacher_.detached(), std::vector<uint64_t>{handle});
  // Nothing to re-attach (an observation window of about four sweeps, as above).
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(attacher_.attached().size(), 1u);
  EXPECT_EQ(attacher_.detached().size(), 1u);
}

// probed_files() (the agent reports it) follows detaches made by a sweep, not only the
// files counted after the last notice was handled.
TEST_F(TlsProbesTest, ProbedFilesCountFollowsSweepDetaches) {
  fs::copy_file(kLibssl, lib_a_ + "/libssl.so.3");
  options_.sweep_interval = milliseconds(50);
  TlsProbes& p = Make();
  p.Start();
  ASSERT_EQ(p.probed_files(), 1u);
  fs::remove(lib_a_ + "/libssl.so.3");
  ASSERT_TRUE(Eventually([&] { return !attacher_.detached().empty(); }));
  EXPECT_TRUE(Eventually([&] { return p.probed_files() == 0; }, milliseconds(1000)))
      << "probed_files() still counts a file the sweep detached";
}

TEST_F(TlsProbesTest, ReplacedLibraryIsDetachedAndTheNewFileAttached) {
  const std::string path = lib_a_ + "/libssl.so.3";
  fs::copy_file(kLibssl, path);
  options_.sweep_interval = milliseconds(50);
  TlsProbes& p = Make();
  p.Start();
  ASSERT_EQ(attacher_.attached().size(), 1u);
  const uint64_t old_handle = attacher_.attached()[0].handle;
  // A package update: a new file renamed over the old one (new inode).
  fs::copy_file(kLibssl, path + ".new");
  fs::rename(path + ".new", path);
  ASSERT_TRUE(Eventually([&] { return attacher_.attached().size() == 2; }));
  EXPECT_EQ(attacher_.detached(), std::vector<uint64_t>{old_handle});
  EXPECT_EQ(attacher_.attached()[1].path, path);
  EXPECT_NE(attacher_.attached()[1].handle, old_handle);
}

// ---- exec -----------------------------------------------------------------------------

TEST_F(TlsProbesTest, ExecOfNodeAttachesToItsExecutable) {
  TlsProbes& p = Make();
  p.Start();
  EXPECT_TRUE(attacher_.attached().empty());
  // A live pid, so that a sweep would not drop it as gone (kill(pid, 0) is real).
  const uint32_t pid = static_cast<uint32_t>(getpid());
  const std::string open_path = Process(pid, "/bin/app", kNode, Place::kSymlink);
  p.OnExec(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  const auto calls = attacher_.attached();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].path, open_path);
  EXPECT_EQ(calls[0].path, proc_ + "/" + std::to_string(pid) + "/root/bin/app");
  EXPECT_FALSE(calls[0].specs.empty());
  EXPECT_EQ(p.probed_files(), 1u);
  // A second exec of the same file (another process, or the same again) attaches nothing.
  p.OnExec(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(attacher_.attached().size(), 1u);
}

TEST_F(TlsProbesTest, ProcessGoneBeforeTheAttachIsAttachedThroughTheFilesOwnPath) {
  // A short-lived first process of a new binary (Bun: the pattern scan takes a while)
  // exits between the analysis and the attach: its /proc/PID/root is gone, but the file
  // by the name it used is the same file (device and inode), so kspan attaches there.
  TlsProbes& p = Make();
  p.Start();
  const uint32_t pid = static_cast<uint32_t>(getpid());
  const std::string open_path = Process(pid, kNode, kNode, Place::kSymlink);
  const std::string proc_dir = proc_ + "/" + std::to_string(pid);
  attacher_.set_refuse([&](const std::string& path) {
    if (!path.starts_with(proc_dir)) return false;
    std::error_code ec;
    fs::remove_all(proc_dir, ec);  // the process exits
    return true;
  });
  p.OnExec(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  const auto calls = attacher_.attached();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].path, kNode);
  EXPECT_EQ(p.probed_files(), 1u);
  EXPECT_EQ(Counter("kspan_tls_files_attach_failed_total"), 0u);
}

TEST_F(TlsProbesTest, GoneProcessWhoseNameIsAnotherFileIsNotAttachedThere) {
  // The same, but the name the process used is another file on the host (a container's
  // /bin/app): no attach through it; the failure is counted.
  TlsProbes& p = Make();
  p.Start();
  const uint32_t pid = static_cast<uint32_t>(getpid());
  Process(pid, kTrue, kNode, Place::kCopy);
  const std::string proc_dir = proc_ + "/" + std::to_string(pid);
  attacher_.set_refuse([&](const std::string& path) {
    std::error_code ec;
    fs::remove_all(proc_dir, ec);
    return true;
  });
  p.OnExec(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_TRUE(attacher_.attached().empty());
  EXPECT_EQ(p.probed_files(), 0u);
  EXPECT_EQ(Counter("kspan_tls_files_attach_failed_total"), 1u);
}

TEST_F(TlsProbesTest, ExecutableIsDetachedOnceNoProcessMapsIt) {
  options_.sweep_interval = milliseconds(50);
  TlsProbes& p = Make();
  p.Start();
  const uint32_t pid = static_cast<uint32_t>(getpid());
  // A copy of libssl run as the "executable": cheap to analyse, and it has SSL_read.
  Process(pid, "/opt/app/bin/server", kLibssl, Place::kCopy);
  p.OnExec(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  ASSERT_EQ(attacher_.attached().size(), 1u);
  // Sweeps while the pid is alive leave it attached: an observation window of about four
  // sweeps (50 ms apart), not a wait for an event.
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_TRUE(attacher_.detached().empty());
  p.OnExit(pid);
  ASSERT_TRUE(Eventually([&] { return !attacher_.detached().empty(); }));
  EXPECT_EQ(attacher_.detached(), std::vector<uint64_t>{attacher_.attached()[0].handle});
}

TEST_F(TlsProbesTest, StartCoversLibrariesRunningProcessesMapFromUnusualPlaces) {
  const uint32_t pid = static_cast<uint32_t>(getpid());
  Process(pid, "/bin/app", kTrue, Place::kCopy, {"/opt/vendor/lib/libssl.so.3"});
  const std::string lib = Put(pid, "/opt/vendor/lib/libssl.so.3", kLibssl, Place::kCopy);
  TlsProbes& p = Make();
  p.Start();  // before "ready": no WaitIdle needed
  const auto calls = attacher_.attached();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].path, lib);
  EXPECT_EQ(p.probed_files(), 1u);
}

// ---- ciphertext: explaining what is not captured -----------------------------------------

TEST_F(TlsProbesTest, UnsupportedLibraryIsReportedOncePerProcessWindow) {
  TlsProbes& p = Make();
  p.Start();
  const uint32_t pid = 4242;
  Process(pid, "/bin/app", kTrue, Place::kCopy, {"/usr/lib/x86_64-linux-gnu/libgnutls.so.30"});
  // Its own copy: the same inode as the executable would make it the same file.
  Put(pid, "/usr/lib/x86_64-linux-gnu/libgnutls.so.30", kTrue, Place::kCopy);
  p.OnCiphertext(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(NotCaptured("app", "unsupported_library"), 1u);
  EXPECT_EQ(Counter("kspan_tls_not_captured_total"), 1u);
  // Every TLS connection of the process says so: within 10 s, once is enough.
  p.OnCiphertext(pid);
  p.OnCiphertext(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(NotCaptured("app", "unsupported_library"), 1u);
  EXPECT_EQ(Counter("kspan_tls_not_captured_total"), 1u);
  EXPECT_TRUE(attacher_.attached().empty());
  // After its exit the pid is forgotten: a new process with that pid is looked at again.
  p.OnExit(pid);
  p.OnCiphertext(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(NotCaptured("app", "unsupported_library"), 2u);
}

TEST_F(TlsProbesTest, ExecutableWithoutTlsLibrariesIsReportedStripped) {
  TlsProbes& p = Make();
  p.Start();
  const uint32_t pid = 4243;
  Process(pid, "/usr/local/bin/tool", kTrue, Place::kCopy);
  p.OnCiphertext(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(NotCaptured("tool", "stripped"), 1u);
  EXPECT_EQ(Counter("kspan_tls_not_captured_total"), 1u);
}

TEST_F(TlsProbesTest, GoneProcessIsReportedUnreadable) {
  TlsProbes& p = Make();
  p.Start();
  p.OnCiphertext(4244);  // no /proc entry at all
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(NotCaptured("unknown", "unreadable"), 1u);
  p.OnCiphertext(4246);  // another: the same series
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(NotCaptured("unknown", "unreadable"), 2u);
}

// A one-shot client of a probed executable (a Go binary whose server already runs) gone
// before its handshake is looked at: its plaintext is captured, so it is not reported as
// not captured (it was, as "unreadable", when its /proc entry was gone).
TEST_F(TlsProbesTest, GoneProcessOfAProbedExecutableIsNotReported) {
  TlsProbes& p = Make();
  p.Start();
  const uint32_t pid = static_cast<uint32_t>(getpid());  // alive for the sweeps
  Process(pid, "/opt/app/bin/server", kLibssl, Place::kCopy);
  p.OnExec(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  ASSERT_EQ(attacher_.attached().size(), 1u);
  fs::remove_all(proc_ + "/" + std::to_string(pid));  // its /proc entry is gone
  p.OnCiphertext(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(Counter("kspan_tls_not_captured_total"), 0u);
}

TEST_F(TlsProbesTest, ProcessUsingAProbedLibraryIsNotReported) {
  fs::copy_file(kLibssl, lib_a_ + "/libssl.so.3");
  TlsProbes& p = Make();
  p.Start();
  ASSERT_EQ(attacher_.attached().size(), 1u);
  const uint32_t pid = 4245;
  // The process maps the library through its root: same inode as the library dir's.
  Process(pid, "/usr/bin/curl", kTrue, Place::kCopy, {"/usr/lib/x86_64-linux-gnu/libssl.so.3"});
  Put(pid, "/usr/lib/x86_64-linux-gnu/libssl.so.3", lib_a_ + "/libssl.so.3", Place::kHardLink);
  p.OnCiphertext(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(Counter("kspan_tls_not_captured_total"), 0u);
  EXPECT_EQ(attacher_.attached().size(), 1u);
}

TEST_F(TlsProbesTest, LibraryLoadedLateIsAttachedOnCiphertext) {
  TlsProbes& p = Make();
  p.Start();
  const uint32_t pid = static_cast<uint32_t>(getpid());
  Process(pid, "/bin/app", kTrue, Place::kCopy);
  p.OnExec(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_TRUE(attacher_.attached().empty());
  // dlopen() of a libssl outside the library directories, after exec.
  const std::string lib = Put(pid, "/opt/py/lib/libssl.so.3", kLibssl, Place::kCopy);
  WriteMaps(pid, {"/bin/app", "/opt/py/lib/libssl.so.3"});
  p.OnCiphertext(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  ASSERT_EQ(attacher_.attached().size(), 1u);
  EXPECT_EQ(attacher_.attached()[0].path, lib);
  EXPECT_EQ(Counter("kspan_tls_not_captured_total"), 0u);
}

TEST_F(TlsProbesTest, AttachFailureIsCountedAndExplained) {
  fs::copy_file(kLibssl, lib_a_ + "/libssl.so.3");
  attacher_.set_fail(true);
  TlsProbes& p = Make();
  p.Start();
  EXPECT_EQ(Counter("kspan_tls_files_attach_failed_total"), 1u);
  EXPECT_EQ(Counter("kspan_tls_files_probed_total"), 0u);
  EXPECT_EQ(p.probed_files(), 0u);
  const uint32_t pid = 4246;
  Process(pid, "/usr/bin/curl", kTrue, Place::kCopy, {"/usr/lib/x86_64-linux-gnu/libssl.so.3"});
  Put(pid, "/usr/lib/x86_64-linux-gnu/libssl.so.3", lib_a_ + "/libssl.so.3", Place::kHardLink);
  p.OnCiphertext(pid);
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(NotCaptured("curl", "attach_failed"), 1u);
  EXPECT_EQ(Counter("kspan_tls_not_captured_total"), 1u);
  // A file that failed once is not retried for every connection.
  EXPECT_EQ(Counter("kspan_tls_files_attach_failed_total"), 1u);
}

// ---- which processes are looked at -------------------------------------------------------

TEST_F(TlsProbesTest, OwnPidAndUnlistedPidsAreNeverScanned) {
  const uint32_t self = 5001, listed = 5002, unlisted = 5003;
  // Each maps its own copy of libssl (distinct inodes), from outside the library dirs.
  for (uint32_t pid : {self, listed, unlisted}) {
    Process(pid, "/bin/app", kTrue, Place::kCopy, {"/opt/lib/libssl.so.3"});
    Put(pid, "/opt/lib/libssl.so.3", kLibssl, Place::kCopy);
  }
  options_.self_pid = self;
  options_.pids = {self, listed};  // even when listed, the agent itself is skipped
  TlsProbes& p = Make();
  p.Start();
  auto calls = attacher_.attached();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].path, proc_ + "/" + std::to_string(listed) + "/root/opt/lib/libssl.so.3");
  for (uint32_t pid : {self, unlisted, 0u}) {
    p.OnExec(pid);
    p.OnCiphertext(pid);
  }
  ASSERT_TRUE(p.WaitIdle(kWait));
  EXPECT_EQ(attacher_.attached().size(), 1u);
  EXPECT_EQ(Counter("kspan_tls_not_captured_total"), 0u);
}

// ---- bounds -------------------------------------------------------------------------------

// Without Start() no thread drains the queue: the bound is hit deterministically.
TEST_F(TlsProbesTest, NoticeQueueIsBoundedAndDropsAreCounted) {
  options_.max_queue = 2;
  TlsProbes& p = Make();
  p.OnExec(1);
  p.OnExit(1);
  p.OnCiphertext(1);
  p.OnExec(2);
  EXPECT_EQ(metrics_.GetCounter("kspan_tls_notices_dropped_total", {{"reason", "queue_full"}})->Value(), 2u);
  EXPECT_FALSE(p.WaitIdle(milliseconds(10))) << "nothing handles the queue before Start()";
}

TEST_F(TlsProbesTest, FileTableIsBoundedAndDropsAreCounted) {
  options_.max_files = 1;
  fs::copy_file(kLibssl, lib_a_ + "/libssl.so.3");
  fs::copy_file(kLibssl, lib_b_ + "/libssl.so.3");  // a second file (another inode)
  TlsProbes& p = Make();
  p.Start();
  EXPECT_EQ(attacher_.attached().size(), 1u);
  EXPECT_EQ(metrics_.GetCounter("kspan_tls_notices_dropped_total", {{"reason", "file_table_full"}})->Value(),
            1u);
}

TEST_F(TlsProbesTest, StopIsIdempotentAndWaitIdleReturnsAfterStop) {
  TlsProbes& p = Make();
  p.Start();
  p.Stop();
  p.Stop();
  p.OnExec(1);  // queued, never handled: WaitIdle must not hang
  EXPECT_TRUE(p.WaitIdle(milliseconds(1000)));
}

}  // namespace
}  // namespace kspan::tls
