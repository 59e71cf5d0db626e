// Finds the OpenSSL copies processes use and keeps the TLS uprobes (bpf/tls.bpf.c)
// attached to each, once per file; says which TLS it cannot see into, and why.
//
//   start:       every libssl.so* in the library directories, and every executable file
//                mapped by a running process (/proc/*/maps), deduplicated by (device, inode)
//   exec:        the new program's executable (node carries OpenSSL inside); shared
//                libraries in the library directories are already covered, since a uprobe
//                belongs to the file and fires in processes that map it later
//   ciphertext:  a connection of process P showed TLS records (ConnTracker): P's maps are
//                scanned again (a libssl from an unusual place is attached now), and if no
//                file P maps is probed, "TLS not captured: <binary>, <reason>" is logged
//                once per binary and counted in kspan_tls_not_captured_total
//   sweep:       every sweep_interval, probes of files no live process maps any more,
//                and of library files replaced or deleted, are detached
//
// Files are analysed on this module's own thread (a 100 MB binary's symbol table is read
// once): the pipeline thread only queues pids (bounded, drops counted). Start() does the
// first scan before returning, so what runs at start is covered when kspan says "ready".
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "events/bpf_event_source.h"
#include "tls/attach_plan.h"
#include "tls/byte_patterns.h"

namespace kspan::tls {

// How probes reach the kernel (BpfEventSource in the agent; a fake in tests).
class UprobeAttacher {
 public:
  virtual ~UprobeAttacher() = default;
  virtual Result<uint64_t> Attach(const std::string& path, const std::vector<events::UprobeSpec>& specs) = 0;
  virtual void Detach(uint64_t handle) = 0;
};

struct TlsProbeOptions {
  std::string proc_root = "/proc";
  std::vector<std::string> library_dirs = {"/usr/lib/x86_64-linux-gnu",
                                           "/lib/x86_64-linux-gnu",
                                           "/usr/lib/aarch64-linux-gnu",
                                           "/usr/lib64",
                                           "/lib64",
                                           "/usr/lib",
                                           "/usr/local/lib",
                                           "/usr/local/lib64"};
  uint32_t self_pid = 0;       // never scanned
  std::vector<uint32_t> pids;  // when set, only these processes are scanned
  std::chrono::milliseconds sweep_interval{30000};
  size_t max_queue = 4096;         // pending exec/exit/ciphertext notices
  size_t max_files = 16384;        // files remembered (analysed, probed or not)
  size_t max_report_labels = 100;  // distinct binaries in kspan_tls_not_captured_total
  // Where SSL_read/SSL_write are in stripped builds (byte_patterns.h): the built-in rows,
  // then the user's (a later row for the same function and build id wins).
  std::vector<PatternRow> patterns;
};

class TlsProbes {
 public:
  TlsProbes(TlsProbeOptions options, UprobeAttacher* attacher, metrics::Registry* metrics);
  ~TlsProbes();  // Stop()
  TlsProbes(const TlsProbes&) = delete;
  TlsProbes& operator=(const TlsProbes&) = delete;

  // Reads and plans (attaching nothing) every file Start's scan will consider, so that
  // Start then only attaches: the agent runs it on a second thread while the BPF programs
  // load. Optional; before Start and never at the same time as another call.
  void Prepare();
  // Scans the library directories and running processes, attaches, starts the thread.
  void Start();
  // Stops the thread. Probes stay attached until the attacher (event source) goes.
  void Stop();

  // From the pipeline thread; never block on the analysis.
  void OnExec(uint32_t pid);
  void OnExit(uint32_t pid);
  void OnCiphertext(uint32_t pid);

  // Waits until every notice queued before the call is handled (tests, shutdown).
  bool WaitIdle(std::chrono::milliseconds timeout);

  size_t probed_files() const;

 private:
  struct FileKey {
    uint64_t dev = 0, ino = 0;
    bool operator<(const FileKey& o) const { return dev != o.dev ? dev < o.dev : ino < o.ino; }
    bool operator==(const FileKey&) const = default;
  };
  enum class State { kNoTls, kProbed, kFailed };
  struct File {
    std::string path;       // as the process names it (for logs)
    std::string open_path;  // where kspan opens it (through /proc/PID/root for containers)
    State state = State::kNoTls;
    std::string detail;  // plan description, or why it could not be probed
    uint64_t handle = 0;
    bool library_dir = false;
    std::set<uint32_t> pids;
  };
  enum class Notice { kExec, kExit, kCiphertext };

  void Enqueue(Notice what, uint32_t pid);
  void Run();
  void Handle(Notice what, uint32_t pid);
  void ScanLibraryDirs();
  void ScanAllProcesses();
  // The libssl files of the library directories, in the order they are considered.
  std::vector<std::string> LibraryDirFiles() const;
  // The processes to scan, in /proc's order.
  std::vector<uint32_t> ProcessesToScan() const;
  // A process's executable ("" when gone or deleted) and every other executable file it
  // maps (each once), from its /proc directory.
  struct ProcessFiles {
    std::string exe;
    std::vector<std::string> mapped;
  };
  ProcessFiles FilesOf(const std::string& proc_dir) const;
  // The probes a file needs; nullopt when it cannot be read as ELF. Pure: touches no state.
  std::optional<Result<AttachPlan>> PlanFile(const std::string& path, const std::string& open_path) const;
  // Considers every executable file the process maps, and its executable. Returns the
  // keys of the files it maps.
  std::vector<FileKey> ScanProcess(uint32_t pid);
  // Analyses (once) and probes a file; records that `pid` (0: none) maps it.
  File* Consider(const std::string& path, const std::string& open_path, uint32_t pid, bool library_dir);
  void Explain(uint32_t pid);
  void Sweep();
  bool Wanted(uint32_t pid) const;

  const TlsProbeOptions options_;
  UprobeAttacher* attacher_;
  metrics::Registry* metrics_;
  metrics::Counter* attached_;
  metrics::Counter* attach_failed_;
  metrics::Counter* queue_full_;
  metrics::Counter* files_dropped_;

  // Thread state (only the module's thread, and Start() before it runs).
  std::map<FileKey, File> files_;
  std::unordered_map<uint32_t, std::vector<FileKey>> by_pid_;
  std::unordered_map<uint32_t, std::chrono::steady_clock::time_point> explained_;
  // pid -> its executable, from scans: a short-lived process may be gone when it needs
  // explaining. `file`: the executable's entry in files_, when it has one.
  struct Exe {
    std::string path;
    std::optional<FileKey> file;
  };
  std::unordered_map<uint32_t, Exe> exe_of_;
  // Plans Prepare made, taken by Consider (then erased).
  std::map<FileKey, std::optional<Result<AttachPlan>>> prepared_;
  size_t probed_count_ = 0;  // files in files_ with probes attached
  // "binary\0reason" -> its metric label; an entry means it was logged.
  std::map<std::string, std::string> labels_;
  std::chrono::steady_clock::time_point next_sweep_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_cv_;
  std::deque<std::pair<Notice, uint32_t>> queue_;  // guarded by mu_
  uint64_t queued_ = 0, handled_ = 0;              // guarded by mu_
  size_t probed_ = 0;                              // guarded by mu_
  bool stop_ = false;                              // guarded by mu_
  std::thread thread_;
};

}  // namespace kspan::tls
