#include "tls/tls_probes.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/log.h"
#include "tls/attach_plan.h"
#include "tls/byte_patterns.h"
#include "tls/elf_file.h"
#include "tls/go_binary.h"
#include "tls/rustls_binary.h"

namespace kspan::tls {
namespace {

std::string Basename(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

bool StatKey(const std::string& path, uint64_t* dev, uint64_t* ino) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  *dev = st.st_dev;
  *ino = st.st_ino;
  return true;
}

// A TLS library kspan does not probe, recognised by its file name.
const char* UnsupportedLibrary(const std::string& name) {
  if (name.starts_with("libgnutls")) return "GnuTLS is not supported";
  if (name.starts_with("libnss3") || name.starts_with("libssl3.so")) return "NSS is not supported";
  if (name.starts_with("libwolfssl")) return "wolfSSL is not supported";
  if (name.starts_with("libmbedtls")) return "Mbed TLS is not supported";
  if (name.starts_with("libboringssl")) return "BoringSSL is not supported";
  return nullptr;
}

struct Verdict {
  const char* code;  // metric label
  std::string reason;
};

// Why an executable without probed TLS functions still does TLS: what it carries inside.
Verdict ExplainExecutable(const std::string& open_path, const std::vector<PatternRow>& patterns) {
  auto elf = ElfFile::Open(open_path);
  if (!elf.ok()) return {"unreadable", "its executable could not be read: " + elf.status().message()};
  const ElfFile& f = *elf.value();
  if (IsGoBinary(f)) {
    auto plan = PlanGoTlsProbes(f);
    return {"go", plan.ok() ? "Go's crypto/tls was probed, but the connection's bytes were not seen"
                            : plan.status().message()};
  }
  // Libraries leave their names in what they link in (version strings, the assembler
  // modules' "by <appro@openssl.org>" banners). Read at most 256 MiB, once per binary.
  std::string_view all = f.Contents();
  if (all.size() > (size_t{256} << 20)) all = all.substr(0, size_t{256} << 20);
  if (all.find("BoringSSL") != std::string_view::npos) {
    // Bun's single binary says which Bun it is ("Bun v1.4.5 (Linux x64)"); the build id
    // names the exact build (what a byte-pattern table would be keyed by).
    std::string seen;
    for (size_t at = all.find("Bun v"); at != std::string_view::npos && seen.empty();
         at = all.find("Bun v", at + 1)) {
      size_t end = at + 5;
      while (end < all.size() && end < at + 24 &&
             (std::isdigit(static_cast<unsigned char>(all[end])) || all[end] == '.'))
        ++end;
      if (end > at + 6 && all[end - 1] != '.') seen = std::string(all.substr(at, end - at)) + ", ";
    }
    const std::string id = f.BuildId();
    seen += id.empty() ? "no build id" : "build id " + id;
    auto plan = PlanPatternProbes(f, patterns);
    return {"boringssl",
            "BoringSSL linked in without SSL_read/SSL_write symbols (" + seen + "): " +
                (plan.ok() ? "its byte patterns were probed, but the connection's bytes were not seen"
                           : plan.status().message())};
  }
  if (const size_t at = all.find("rustls"); at != std::string_view::npos) {
    // Its version, from the crate's path in panic messages ("…/rustls-0.20.8/src/…").
    std::string seen = "rustls";
    for (size_t v = all.find("rustls-", at); v != std::string_view::npos && seen == "rustls";
         v = all.find("rustls-", v + 1)) {
      size_t end = v + 7;
      while (end < all.size() && end < v + 24 &&
             (std::isdigit(static_cast<unsigned char>(all[end])) || all[end] == '.'))
        ++end;
      if (end > v + 8 && all[end - 1] != '.' && std::isdigit(static_cast<unsigned char>(all[v + 7])))
        seen = std::string(all.substr(v, end - v));
    }
    auto plan = PlanRustlsProbes(f);
    return {"rustls",
            seen + ": " +
                (plan.ok() ? "its Reader::read/Writer::write were probed, but the connection's bytes "
                             "were not seen"
                           : plan.status().message())};
  }
  if (all.find("openssl.org") != std::string_view::npos || all.find("OpenSSL") != std::string_view::npos) {
    return {"stripped", "OpenSSL is linked in, but the binary has no SSL_read/SSL_write symbols (stripped)"};
  }
  return {"stripped",
          "no SSL_read/SSL_write symbols in the binary or its libraries (a stripped binary, or a TLS library "
          "kspan does not support)"};
}

}  // namespace

TlsProbes::TlsProbes(TlsProbeOptions options, UprobeAttacher* attacher, metrics::Registry* metrics)
    : options_(std::move(options)), attacher_(attacher), metrics_(metrics) {
  attached_ = metrics_->GetCounter("kspan_tls_files_probed_total");
  attach_failed_ = metrics_->GetCounter("kspan_tls_files_attach_failed_total");
  queue_full_ = metrics_->GetCounter("kspan_tls_notices_dropped_total", {{"reason", "queue_full"}});
  files_dropped_ = metrics_->GetCounter("kspan_tls_notices_dropped_total", {{"reason", "file_table_full"}});
}

TlsProbes::~TlsProbes() {
  Stop();
}

bool TlsProbes::Wanted(uint32_t pid) const {
  if (pid == 0 || pid == options_.self_pid) return false;
  return options_.pids.empty() ||
         std::find(options_.pids.begin(), options_.pids.end(), pid) != options_.pids.end();
}

void TlsProbes::Start() {
  ScanLibraryDirs();
  ScanAllProcesses();
  prepared_.clear();  // what the scan did not take (a process gone since Prepare)
  next_sweep_ = std::chrono::steady_clock::now() + options_.sweep_interval;
  {
    std::lock_guard<std::mutex> lock(mu_);
    probed_ = probed_count_;
  }
  thread_ = std::thread([this] { Run(); });
}

void TlsProbes::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TlsProbes::OnExec(uint32_t pid) {
  Enqueue(Notice::kExec, pid);
}
void TlsProbes::OnExit(uint32_t pid) {
  Enqueue(Notice::kExit, pid);
}
void TlsProbes::OnCiphertext(uint32_t pid) {
  Enqueue(Notice::kCiphertext, pid);
}

void TlsProbes::Enqueue(Notice what, uint32_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  if (queue_.size() >= options_.max_queue) {
    queue_full_->Add();
    return;
  }
  queue_.emplace_back(what, pid);
  ++queued_;
  cv_.notify_one();
}

bool TlsProbes::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t target = queued_;
  return idle_cv_.wait_for(lock, timeout, [&] { return handled_ >= target || stop_; });
}

size_t TlsProbes::probed_files() const {
  std::lock_guard<std::mutex> lock(mu_);
  return probed_;
}

void TlsProbes::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const auto now = std::chrono::steady_clock::now();
    if (queue_.empty()) {
      if (now >= next_sweep_) {
        lock.unlock();
        Sweep();
        lock.lock();
        probed_ = probed_count_;
        next_sweep_ = std::chrono::steady_clock::now() + options_.sweep_interval;
      }
      cv_.wait_until(lock, next_sweep_, [&] { return stop_ || !queue_.empty(); });
      continue;
    }
    const auto [what, pid] = queue_.front();
    queue_.pop_front();
    lock.unlock();
    Handle(what, pid);
    lock.lock();
    probed_ = probed_count_;
    ++handled_;
    idle_cv_.notify_all();
  }
}

void TlsProbes::Handle(Notice what, uint32_t pid) {
  switch (what) {
    case Notice::kExec:
      if (Wanted(pid)) ScanProcess(pid);
      break;
    case Notice::kExit: {
      auto it = by_pid_.find(pid);
      if (it != by_pid_.end()) {
        for (const FileKey& key : it->second) {
          auto f = files_.find(key);
          if (f != files_.end()) f->second.pids.erase(pid);
        }
        by_pid_.erase(it);
      }
      explained_.erase(pid);
      exe_of_.erase(pid);
      break;
    }
    case Notice::kCiphertext: {
      if (!Wanted(pid)) break;
      // Every TLS connection starts with a handshake: look at a process once, then at
      // most every 10 s (a library may be loaded later).
      const auto now = std::chrono::steady_clock::now();
      auto [it, fresh] = explained_.try_emplace(pid, now);
      if (!fresh && now - it->second < std::chrono::seconds(10)) break;
      it->second = now;
      Explain(pid);
      break;
    }
  }
}

std::vector<std::string> TlsProbes::LibraryDirFiles() const {
  std::vector<std::string> out;
  for (const std::string& dir : options_.library_dirs) {
    DIR* d = opendir(dir.c_str());
    if (!d) continue;
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name.starts_with("libssl.so")) names.push_back(name);
    }
    closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) out.push_back(dir + "/" + name);
  }
  return out;
}

void TlsProbes::ScanLibraryDirs() {
  for (const std::string& path : LibraryDirFiles()) Consider(path, path, 0, true);
}

std::vector<uint32_t> TlsProbes::ProcessesToScan() const {
  std::vector<uint32_t> pids;
  DIR* d = opendir(options_.proc_root.c_str());
  if (!d) return pids;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const unsigned long pid = std::strtoul(e->d_name, &end, 10);
    if (end && *end == '\0' && pid > 0 && Wanted(static_cast<uint32_t>(pid))) {
      pids.push_back(static_cast<uint32_t>(pid));
    }
  }
  closedir(d);
  return pids;
}

void TlsProbes::ScanAllProcesses() {
  for (uint32_t pid : ProcessesToScan()) ScanProcess(pid);
}

TlsProbes::ProcessFiles TlsProbes::FilesOf(const std::string& dir) const {
  ProcessFiles out;
  char exe[4096];
  const ssize_t n = readlink((dir + "/exe").c_str(), exe, sizeof(exe) - 1);
  if (n > 0) {
    std::string path(exe, static_cast<size_t>(n));
    if (!path.ends_with(" (deleted)")) out.exe = std::move(path);
  }
  std::ifstream maps(dir + "/maps");
  std::string line;
  std::set<std::string> seen;
  while (std::getline(maps, line)) {
    // address perms offset dev inode path
    std::istringstream in(line);
    std::string addr, perms, offset, dev, inode, path;
    in >> addr >> perms >> offset >> dev >> inode;
    std::getline(in >> std::ws, path);
    if (perms.size() < 3 || perms[2] != 'x' || inode == "0" || !path.starts_with('/')) continue;
    if (path.ends_with(" (deleted)") || !seen.insert(path).second) continue;
    out.mapped.push_back(std::move(path));
  }
  return out;
}

std::vector<TlsProbes::FileKey> TlsProbes::ScanProcess(uint32_t pid) {
  const std::string dir = options_.proc_root + "/" + std::to_string(pid);
  const std::string root = dir + "/root";
  std::vector<FileKey> keys;
  auto add = [&](const std::string& path) {
    if (File* f = Consider(path, root + path, pid, false)) {
      uint64_t dev, ino;
      if (StatKey(f->open_path, &dev, &ino)) {
        keys.push_back({dev, ino});
        return true;
      }
    }
    return false;
  };
  const ProcessFiles files = FilesOf(dir);
  if (!files.exe.empty()) {
    Exe& exe = exe_of_[pid];
    exe.path = files.exe;
    exe.file.reset();
    if (add(files.exe)) exe.file = keys.back();
  }
  for (const std::string& path : files.mapped) add(path);
  return keys;
}

void TlsProbes::Prepare() {
  auto prepare = [this](const std::string& path, const std::string& open_path) {
    FileKey key;
    if (!StatKey(open_path, &key.dev, &key.ino) || prepared_.size() >= options_.max_files) return;
    if (prepared_.find(key) == prepared_.end()) prepared_.emplace(key, PlanFile(path, open_path));
  };
  for (const std::string& path : LibraryDirFiles()) prepare(path, path);
  for (uint32_t pid : ProcessesToScan()) {
    const std::string dir = options_.proc_root + "/" + std::to_string(pid);
    const ProcessFiles files = FilesOf(dir);
    if (!files.exe.empty()) prepare(files.exe, dir + "/root" + files.exe);
    for (const std::string& path : files.mapped) prepare(path, dir + "/root" + path);
  }
}

std::optional<Result<AttachPlan>> TlsProbes::PlanFile(const std::string& path,
                                                      const std::string& open_path) const {
  auto elf = ElfFile::Open(open_path);
  if (!elf.ok()) return std::nullopt;
  auto plan = PlanTlsProbes(*elf.value());
  if (!plan.ok() && IsGoBinary(*elf.value())) plan = PlanGoTlsProbes(*elf.value());
  if (!plan.ok()) {
    // A Rust program on rustls, with symbols (rustls_binary.h).
    auto rustls = PlanRustlsProbes(*elf.value());
    if (rustls.ok()) plan = std::move(rustls);
  }
  if (!plan.ok() && HasPatternRows(*elf.value(), options_.patterns)) {
    // A stripped build whose SSL_read/SSL_write the byte-pattern table knows (Bun).
    plan = PlanPatternProbes(*elf.value(), options_.patterns);
    if (!plan.ok()) {
      log::Warn("TLS byte pattern does not match", {{"binary", path}, {"error", plan.status().message()}});
    }
  }
  return plan;
}

TlsProbes::File* TlsProbes::Consider(const std::string& path, const std::string& open_path, uint32_t pid,
                                     bool library_dir) {
  FileKey key;
  if (!StatKey(open_path, &key.dev, &key.ino)) return nullptr;
  auto it = files_.find(key);
  if (it == files_.end()) {
    if (files_.size() >= options_.max_files) {
      files_dropped_->Add();
      return nullptr;
    }
    File f;
    f.path = path;
    f.open_path = open_path;
    f.library_dir = library_dir;
    std::optional<Result<AttachPlan>> planned;
    if (auto ready = prepared_.find(key); ready != prepared_.end()) {
      planned = std::move(ready->second);
      prepared_.erase(ready);
    } else {
      planned = PlanFile(path, open_path);
    }
    if (planned) {
      Result<AttachPlan>& plan = *planned;
      if (plan.ok()) {
        auto handle = attacher_->Attach(open_path, plan.value().probes);
        // A process that exited meanwhile (a short-lived first run of a new binary: Bun's
        // pattern scan takes a while) took its /proc/PID/root with it. The file by the name
        // the process used serves as well when it is still the same file (device, inode).
        uint64_t dev, ino;
        if (!handle.ok() && open_path != path && !StatKey(open_path, &dev, &ino) &&
            StatKey(path, &dev, &ino) && dev == key.dev && ino == key.ino) {
          f.open_path = path;
          handle = attacher_->Attach(path, plan.value().probes);
          if (handle.ok()) {
            log::Info("TLS probes attached through the file's own path: the process is gone",
                      {{"binary", path}});
          }
        }
        if (handle.ok()) {
          f.state = State::kProbed;
          f.handle = handle.value();
          ++probed_count_;
          f.detail = plan.value().description;
          attached_->Add();
          log::Info("TLS probes attached",
                    {{"binary", path}, {"probes", f.detail}, {"slow", plan.value().slow}});
          if (plan.value().slow) {
            log::Warn("TLS probes on single-stepped instructions: each TLS call costs ~20 us more",
                      {{"binary", path}});
          }
        } else {
          f.state = State::kFailed;
          f.detail = handle.status().message();
          attach_failed_->Add();
          log::Warn("TLS probes not attached", {{"binary", path}, {"error", f.detail}});
        }
      }
    }
    it = files_.emplace(key, std::move(f)).first;
  }
  File& f = it->second;
  f.library_dir |= library_dir;
  if (pid != 0 && f.pids.insert(pid).second) {
    auto& keys = by_pid_[pid];
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  return &f;
}

void TlsProbes::Explain(uint32_t pid) {
  const size_t probed_before = probed_count_;
  const std::vector<FileKey> keys = ScanProcess(pid);
  std::string exe_path, exe_open;
  std::optional<Verdict> verdict;
  bool probed = false;
  for (const FileKey& key : keys) {
    auto it = files_.find(key);
    if (it == files_.end()) continue;
    const File& f = it->second;
    if (f.state == State::kProbed) probed = true;
    if (f.state == State::kFailed && !verdict)
      verdict = Verdict{"attach_failed", "attaching failed: " + f.detail};
    if (const char* why = UnsupportedLibrary(Basename(f.path)); why && !verdict) {
      verdict = Verdict{"unsupported_library", std::string(why) + " (" + Basename(f.path) + ")"};
    }
  }
  // The executable ScanProcess read, now or at exec (a short-lived process may be gone);
  // opened through the process's root while it lives (containers), else as named.
  if (auto known = exe_of_.find(pid); known != exe_of_.end()) {
    exe_path = known->second.path;
    exe_open = options_.proc_root + "/" + std::to_string(pid) + "/root" + exe_path;
    if (access(exe_open.c_str(), R_OK) != 0) exe_open = exe_path;
    // Gone before this look, its executable probed (a one-shot Go client of a binary whose
    // server runs): its plaintext is captured, whatever its handshake looked like.
    if (known->second.file) {
      auto f = files_.find(*known->second.file);
      if (f != files_.end() && f->second.state == State::kProbed) probed = true;
    }
  }
  if (probed) {
    if (probed_count_ > probed_before) {
      log::Info("TLS library found late: its first connections were not captured, later ones are",
                {{"pid", pid}, {"binary", exe_path}});
    }
    return;
  }
  if (!verdict)
    verdict = exe_open.empty() ? Verdict{"unreadable", "the process is gone"}
                               : ExplainExecutable(exe_open, options_.patterns);
  // Unknown: one series for every such process (the log line names the pid).
  const std::string binary = exe_path.empty() ? "unknown" : Basename(exe_path);
  auto [label, first] = labels_.try_emplace(exe_path + '\0' + verdict->code, binary);
  if (first && labels_.size() > options_.max_report_labels) label->second = "other";  // bounded series
  metrics_->GetCounter("kspan_tls_not_captured_total", {{"binary", label->second}, {"reason", verdict->code}})
      ->Add();
  if (!first) return;  // logged once per binary and reason
  log::Warn("TLS not captured",
            {{"binary", exe_path.empty() ? binary : exe_path}, {"pid", pid}, {"reason", verdict->reason}});
}

void TlsProbes::Sweep() {
  for (auto it = files_.begin(); it != files_.end();) {
    File& f = it->second;
    for (auto p = f.pids.begin(); p != f.pids.end();) {
      p = (kill(static_cast<pid_t>(*p), 0) != 0 && errno == ESRCH) ? f.pids.erase(p) : std::next(p);
    }
    bool drop;
    if (f.library_dir) {
      uint64_t dev, ino;
      drop = !StatKey(f.open_path, &dev, &ino) || dev != it->first.dev || ino != it->first.ino;
    } else {
      drop = f.pids.empty();
    }
    if (!drop) {
      ++it;
      continue;
    }
    if (f.state == State::kProbed) {
      attacher_->Detach(f.handle);
      --probed_count_;
      log::Info("TLS probes detached",
                {{"binary", f.path}, {"why", f.library_dir ? "file replaced" : "no process maps it"}});
    }
    it = files_.erase(it);
  }
  for (auto it = by_pid_.begin(); it != by_pid_.end();) {
    it = (kill(static_cast<pid_t>(it->first), 0) != 0 && errno == ESRCH) ? by_pid_.erase(it) : std::next(it);
  }
  for (auto it = exe_of_.begin(); it != exe_of_.end();) {  // exits whose notice was dropped
    it = (kill(static_cast<pid_t>(it->first), 0) != 0 && errno == ESRCH) ? exe_of_.erase(it) : std::next(it);
  }
  ScanLibraryDirs();  // a replaced libssl is probed anew
}

}  // namespace kspan::tls
