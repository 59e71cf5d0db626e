#include "events/bpf_event_source.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include "common/log.h"
#include "events/capabilities.h"
#include "kspan.skel.h"

namespace kspan::events {

struct BpfEventSource::Skeleton : kspan_bpf {};

namespace {

// libbpf prints (including the verifier log) go to a bounded buffer, so a load failure
// can report the tail of the log instead of pages of text on stderr.
std::mutex g_libbpf_log_mu;
std::string g_libbpf_log;
constexpr size_t kLibbpfLogCap = 256 * 1024;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  // The verifier log arrives as one message of up to megabytes: size it exactly.
  va_list copy;
  va_copy(copy, args);
  const int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return 0;
  std::string text(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(text.data(), text.size(), fmt, args);
  text.resize(static_cast<size_t>(n));
  {
    std::lock_guard<std::mutex> lock(g_libbpf_log_mu);
    g_libbpf_log += text;
    if (g_libbpf_log.size() > kLibbpfLogCap) g_libbpf_log.erase(0, g_libbpf_log.size() - kLibbpfLogCap / 2);
  }
  if (level != LIBBPF_DEBUG && log::GetLevel() == log::Level::kDebug) {
    while (!text.empty() && text.back() == '\n') text.pop_back();
    log::Debug("libbpf", {{"text", text}});
  }
  return 0;
}

std::string LibbpfLogTail(size_t max_bytes) {
  std::lock_guard<std::mutex> lock(g_libbpf_log_mu);
  // Prefer the end of the last verifier log: that is where it says why it rejected.
  const size_t end = g_libbpf_log.rfind("-- END PROG LOAD LOG --");
  if (end != std::string::npos) {
    const size_t begin = g_libbpf_log.rfind("-- BEGIN PROG LOAD LOG --", end);
    const size_t prog = g_libbpf_log.rfind("prog '", begin);
    std::string head =
        prog != std::string::npos ? g_libbpf_log.substr(prog, g_libbpf_log.find('\n', prog) - prog) : "";
    std::string body = g_libbpf_log.substr(begin, end - begin);
    if (body.size() > max_bytes) body = "..." + body.substr(body.size() - max_bytes);
    return head + "\n" + body;
  }
  if (g_libbpf_log.size() <= max_bytes) return g_libbpf_log;
  return "..." + g_libbpf_log.substr(g_libbpf_log.size() - max_bytes);
}

void ClearLibbpfLog() {
  std::lock_guard<std::mutex> lock(g_libbpf_log_mu);
  g_libbpf_log.clear();
}

bool IsDir(const char* path) {
  struct stat st {};
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// libbpf finds tracepoint ids under tracefs; a fresh machine may not have it mounted.
Status EnsureTracefs() {
  if (IsDir("/sys/kernel/tracing/events/syscalls") || IsDir("/sys/kernel/debug/tracing/events/syscalls")) {
    return Status::Ok();
  }
  if (!IsDir("/sys/kernel/tracing")) {
    return Unavailable(
        "tracefs is not available: /sys/kernel/tracing does not exist, so syscall tracepoints cannot be "
        "attached (is CONFIG_FTRACE_SYSCALLS enabled and /sys mounted?)");
  }
  if (mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, nullptr) != 0) {
    return Unavailable(std::string("tracefs is not mounted at /sys/kernel/tracing and mounting it failed (") +
                       std::strerror(errno) +
                       "); mount it with `mount -t tracefs nodev /sys/kernel/tracing`");
  }
  if (!IsDir("/sys/kernel/tracing/events/syscalls")) {
    return Unavailable(
        "tracefs is mounted but has no events/syscalls: the kernel lacks syscall tracepoints "
        "(CONFIG_FTRACE_SYSCALLS), which kspan needs");
  }
  log::Info("mounted tracefs", {{"path", "/sys/kernel/tracing"}});
  return Status::Ok();
}

// Capabilities, not uid 0 (events/capabilities.h says which and why).
Status CheckPrivileges() {
  std::ifstream in("/proc/self/status");
  const std::string status((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::optional<uint64_t> effective = EffectiveCapabilities(status);
  if (!effective) return Internal("cannot read kspan's own capabilities (CapEff in /proc/self/status)");
  const CapabilityCheck check = CheckCapabilities(*effective);
  if (!check.required.empty()) {
    return PermissionDenied("kspan lacks " + Describe(check.required) +
                            ". Run it as root (sudo), or grant these capabilities (docs/deploy.md)");
  }
  if (!check.optional.empty()) {
    log::Warn("running without some capabilities: what needs them is off",
              {{"missing", Describe(check.optional)}});
  }
  return Status::Ok();
}

Status Preflight() {
  RETURN_IF_ERROR(CheckPrivileges());
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return Unavailable(
        "kernel BTF is missing (/sys/kernel/btf/vmlinux): kspan's CO-RE programs need a kernel built with "
        "CONFIG_DEBUG_INFO_BTF=y");
  }
  return EnsureTracefs();
}

bool IsPowerOfTwo(uint32_t v) {
  return v && !(v & (v - 1));
}

}  // namespace

namespace {

using Attach = ProgramRow::Attach;
using Need = ProgramRow::Need;

constexpr const char* kLoopTurns =
    "event-loop attribution (calls of node/asyncio servers with several requests in flight become "
    "ambiguous links)";
constexpr const char* kFileWrites = "agents' file writes as events of their tool runs";
constexpr const char* kTlsPlaintext = "TLS plaintext of this call (the connection shows as not captured)";

// One row a program (*like* Falco libs' events_prog_table.c). A program added to bpf/
// gets its row here; tests/unit/bpf_objects_test.cc fails until it has one.
// ks_ex_data's tracepoints: one program for every data syscall's exit (bpf/sock_io.bpf.c),
// verified once.
constexpr ProgramRow::Hook kDataExits[] = {
    {"syscalls/sys_exit_read", "capture of read() payloads", Need::kCore},
    {"syscalls/sys_exit_write", "capture of write() payloads", Need::kCore},
    {"syscalls/sys_exit_readv", "capture of readv() payloads", Need::kCore},
    {"syscalls/sys_exit_writev", "capture of writev() payloads", Need::kCore},
    {"syscalls/sys_exit_sendto", "capture of send()/sendto() payloads", Need::kOptional},
    {"syscalls/sys_exit_recvfrom", "capture of recv()/recvfrom() payloads", Need::kOptional},
    {"syscalls/sys_exit_sendmsg", "capture of sendmsg() payloads", Need::kOptional},
    {"syscalls/sys_exit_recvmsg", "capture of recvmsg() payloads", Need::kOptional},
    {"syscalls/sys_exit_sendfile64", "bytes sent with sendfile() are not counted", Need::kOptional},
};

constexpr ProgramRow kPrograms[] = {
    // bpf/sock_io.bpf.c: entry programs stash the arguments their exit program needs (the
    // sending syscalls only: a read's exit takes its arguments from the saved registers).
    {"ks_en_write", "capture of write() payloads", Need::kOptional, Attach::kAtStart},
    {"ks_en_writev", "capture of writev() payloads", Need::kOptional, Attach::kAtStart},
    {"ks_en_sendto", "capture of send()/sendto() payloads", Need::kOptional, Attach::kAtStart},
    {"ks_en_sendmsg", "capture of sendmsg() payloads", Need::kOptional, Attach::kAtStart},
    {"ks_en_sendfile", "bytes sent with sendfile() are not counted", Need::kOptional, Attach::kAtStart},
    {"ks_en_connect", "client role of new connections (inferred instead)", Need::kOptional, Attach::kAtStart},
    {"ks_en_accept", "server role of new connections (inferred instead)", Need::kOptional, Attach::kAtStart},
    {"ks_en_accept4", "server role of new connections (inferred instead)", Need::kOptional, Attach::kAtStart},
    {"ks_ex_data", "capture of every data syscall's payloads", Need::kCore, Attach::kAtStart, kDataExits},
    {"ks_ex_connect", "client role of new connections (inferred instead)", Need::kOptional, Attach::kAtStart},
    {"ks_ex_accept", "server role of new connections (inferred instead)", Need::kOptional, Attach::kAtStart},
    {"ks_ex_accept4", "server role of new connections (inferred instead)", Need::kOptional, Attach::kAtStart},
    {"ks_en_close", "connection close (responses ending at close stay open)", Need::kOptional,
     Attach::kAtStart},
    {"ks_en_listen", "a port rule selects a server when it starts listening (else within 2 s)",
     Need::kOptional, Attach::kAtStart},
    // bpf/file_write.bpf.c: agents' file writes (docs/agents.md). They run on every openat,
    // write and close of every process, so they are attached only once an agent is marked.
    {"ks_fw_en_openat", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_ex_openat", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_en_write", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_ex_write", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_en_pwrite", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_ex_pwrite", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_en_writev", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_ex_writev", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_en_pwv", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_ex_pwv", kFileWrites, Need::kOptional, Attach::kWithAgents},
    {"ks_fw_en_close", kFileWrites, Need::kOptional, Attach::kWithAgents},
    // bpf/process.bpf.c
    {"ks_proc_exec", "names of short-lived processes", Need::kOptional, Attach::kAtStart},
    {"ks_proc_exit", "prompt clean-up of exited processes", Need::kOptional, Attach::kAtStart},
    {"ks_proc_fork", "short-lived forked processes decided as their parent (else skipped when gone)",
     Need::kOptional, Attach::kWithRules},
    // bpf/loop.bpf.c: one program per readiness wait.
    {"ks_turn_epoll", kLoopTurns, Need::kOptional, Attach::kAtStart},
    {"ks_turn_epollp", kLoopTurns, Need::kOptional, Attach::kAtStart},
    {"ks_turn_epollp2", kLoopTurns, Need::kOptional, Attach::kAtStart},
    {"ks_turn_poll", kLoopTurns, Need::kOptional, Attach::kAtStart},
    {"ks_turn_ppoll", kLoopTurns, Need::kOptional, Attach::kAtStart},
    {"ks_turn_select", kLoopTurns, Need::kOptional, Attach::kAtStart},
    {"ks_turn_pselect", kLoopTurns, Need::kOptional, Attach::kAtStart},
    // bpf/tls.bpf.c: attached per TLS library by userspace/tls/ (AttachUprobes reports a
    // failure there, per library).
    {"ks_ssl_read", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_ssl_read_ex", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_ssl_write", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_ssl_write_ex", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_ssl_sockw", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_ssl_sockw_ex", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_ssl_rd_ret", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_ssl_wr_ret", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    // bpf/go_tls.bpf.c: attached per Go binary by userspace/tls/ (go_binary.h).
    {"ks_go_tls_write", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_go_tls_read", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_go_tls_rdret", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_go_spawn", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_go_spawned", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_go_handshake", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_go_roundtrip", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_go_conn_loop", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    // bpf/tls.bpf.c: attached per Rust binary with rustls by userspace/tls/ (rustls_binary.h).
    {"ks_rls_read", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_rls_read_m", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_rls_write", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_rls_write_m", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
    {"ks_rls_rd_ret", kTlsPlaintext, Need::kOptional, Attach::kPerLibrary},
};

// Attaches a program of one hook (its SEC names it); on failure logs what it costs and
// returns null with *err set to errno.
bpf_link* AttachOrWarn(bpf_program* prog, const ProgramRow& row, int* err) {
  bpf_link* link = bpf_program__attach(prog);
  if (!link) {
    *err = errno;
    log::Warn("hook not attached",
              {{"program", bpf_program__name(prog)}, {"error", std::strerror(*err)}, {"costs", row.feature}});
  }
  return link;
}

}  // namespace

std::span<const ProgramRow> ProgramTable() {
  return kPrograms;
}

const ProgramRow* FindProgramRow(std::string_view program) {
  for (const ProgramRow& row : kPrograms) {
    if (program == row.program) return &row;
  }
  return nullptr;
}

const char* KernelCounterName(int index) {
  switch (index) {
    case KSPAN_CNT_RB_FULL_DATA: return "ring_buffer_full_data";
    case KSPAN_CNT_RB_FULL_CONN: return "ring_buffer_full_conn";
    case KSPAN_CNT_RB_FULL_PROC: return "ring_buffer_full_proc";
    case KSPAN_CNT_COPY_FAILED: return "payload_copy_failed";
    case KSPAN_CNT_STASH_FULL: return "syscall_stash_full";
    case KSPAN_CNT_CONN_FULL: return "conn_map_full";
    case KSPAN_CNT_EVENTS: return "events";
    case KSPAN_CNT_TLS_CIPHERTEXT: return "tls_ciphertext_skipped";
    case KSPAN_CNT_TLS_UNBOUND: return "tls_plaintext_unbound";
    case KSPAN_CNT_AGENT_FULL: return "agent_child_unmarked";
    case KSPAN_CNT_RB_FULL_FILE: return "ring_buffer_full_file";
    case KSPAN_CNT_FILE_FULL: return "file_map_full";
    case KSPAN_CNT_TLS_CALL_FULL: return "tls_call_map_full";
    default: return "unknown";
  }
}

Result<std::unique_ptr<BpfEventSource>> BpfEventSource::Open(const BpfSourceOptions& options,
                                                             metrics::Registry* metrics) {
  if (options.capture_bytes > KSPAN_MAX_CAPTURE || options.llm_capture_bytes > KSPAN_MAX_CAPTURE) {
    return InvalidArgument("capture bytes " +
                           std::to_string(std::max(options.capture_bytes, options.llm_capture_bytes)) +
                           " is above the maximum " + std::to_string(KSPAN_MAX_CAPTURE));
  }
  if (!IsPowerOfTwo(options.ring_buffer_bytes) || options.ring_buffer_bytes < 4096) {
    return InvalidArgument("ring buffer size " + std::to_string(options.ring_buffer_bytes) +
                           " must be a power of two and at least 4096 bytes");
  }
  RETURN_IF_ERROR(Preflight());
  std::unique_ptr<BpfEventSource> src(new BpfEventSource());
  src->metrics_ = metrics;
  src->records_ = metrics->GetCounter("kspan_ring_buffer_records_total");
  src->malformed_ = metrics->GetCounter("kspan_events_dropped_total", {{"reason", "malformed"}});
  RETURN_IF_ERROR(src->Load(options));
  return src;
}

Status BpfEventSource::Load(const BpfSourceOptions& options) {
  libbpf_set_print(LibbpfPrint);
  ClearLibbpfLog();
  possible_cpus_ = libbpf_num_possible_cpus();
  if (possible_cpus_ <= 0) return Internal("cannot count possible CPUs");

  kspan_bpf* skel = kspan_bpf__open();
  if (!skel) return Internal(std::string("opening the BPF object failed: ") + std::strerror(errno));
  skel_ = static_cast<Skeleton*>(skel);

  skel->rodata->ks_self_tgid = options.self_pid ? options.self_pid : static_cast<uint32_t>(getpid());
  skel->rodata->ks_select_mode = !options.pids.empty()     ? KSPAN_SELECT_PIDS
                                 : options.select_by_rules ? KSPAN_SELECT_RULES
                                                           : KSPAN_SELECT_ALL;
  skel->rodata->ks_capture_bytes = options.capture_bytes;
  skel->rodata->ks_llm_capture_bytes = options.llm_capture_bytes;
  // Wake the consumer only once a quarter of the ring is full; a timed drain does the rest.
  skel->rodata->ks_wakeup_bytes = options.ring_buffer_bytes / 4;
  if (int err = bpf_map__set_max_entries(skel->maps.ks_events, options.ring_buffer_bytes); err) {
    return Internal("setting the ring buffer size failed: " + std::string(std::strerror(-err)));
  }

  if (int err = bpf_map__set_max_entries(skel->maps.ks_scratch, static_cast<uint32_t>(possible_cpus_)); err) {
    return Internal("sizing the capture scratch map failed: " + std::string(std::strerror(-err)));
  }

  if (int err = kspan_bpf__load(skel); err) {
    std::string tail = LibbpfLogTail(3000);
    const bool verifier_said_no = tail.find("-- BEGIN PROG LOAD LOG --") != std::string::npos;
    if (!verifier_said_no && (err == -EPERM || err == -EACCES)) {
      return PermissionDenied("the kernel refused to load kspan's BPF programs (" +
                              std::string(std::strerror(-err)) +
                              "); lockdown or missing capabilities? libbpf log tail:\n" + tail);
    }
    return Internal("loading kspan's BPF programs failed (" + std::string(std::strerror(-err)) +
                    "); the kernel's verifier rejected a program. The tail of its log:\n" + tail);
  }

  if (options.pids.size() > KSPAN_PIDS_MAX) {
    return ResourceExhausted("too many --pid filters: " + std::to_string(options.pids.size()) + ", at most " +
                             std::to_string(KSPAN_PIDS_MAX));
  }
  for (uint32_t pid : options.pids) {
    const uint8_t one = 1;
    if (bpf_map__update_elem(skel->maps.ks_select, &pid, sizeof(pid), &one, sizeof(one), BPF_ANY) != 0) {
      return Internal("setting --pid " + std::to_string(pid) +
                      " in the kernel failed: " + std::strerror(errno));
    }
  }

  // Attach program by program so one failure costs one feature, reported, not all; what
  // each program serves is in kPrograms.
  bpf_program* prog;
  int core_hooks = 0;
  bpf_object__for_each_program(prog, skel->obj) {
    const char* name = bpf_program__name(prog);
    const ProgramRow* row = FindProgramRow(name);
    if (!row) {
      return Internal(std::string("BPF program ") + name +
                      " has no row in the program table (kPrograms, userspace/events/bpf_event_source.cc)");
    }
    if (row->attach == Attach::kWithRules && !options.select_by_rules) continue;
    // userspace/tls/ attaches per library, MarkAgent with the first agent.
    if (row->attach != Attach::kAtStart && row->attach != Attach::kWithRules) continue;
    for (const ProgramRow::Hook& hook : row->hooks) {
      const std::string_view tp = hook.tracepoint;
      const size_t slash = tp.find('/');
      const std::string category(tp.substr(0, slash)), event(tp.substr(slash + 1));
      bpf_link* link = bpf_program__attach_tracepoint(prog, category.c_str(), event.c_str());
      if (!link) {
        const int err = errno;
        missing_.push_back({std::string(name) + "@" + std::string(tp), std::strerror(err), hook.feature});
        log::Warn("hook not attached", {{"program", name},
                                        {"tracepoint", std::string(tp)},
                                        {"error", std::strerror(err)},
                                        {"costs", hook.feature}});
        continue;
      }
      links_.push_back(link);
      if (hook.need == Need::kCore) ++core_hooks;
    }
    if (!row->hooks.empty()) continue;
    int err = 0;
    bpf_link* link = AttachOrWarn(prog, *row, &err);
    if (!link) {
      missing_.push_back({name, std::strerror(err), row->feature});
      continue;
    }
    links_.push_back(link);
    if (row->need == Need::kCore) ++core_hooks;
  }
  if (core_hooks == 0) {
    return Unavailable(
        "no read/write syscall tracepoint could be attached; kspan cannot capture anything. "
        "libbpf log tail:\n" +
        LibbpfLogTail(2000));
  }

  ring_ = ring_buffer__new(bpf_map__fd(skel->maps.ks_events), &BpfEventSource::OnRecord, this, nullptr);
  if (!ring_)
    return Internal(std::string("creating the ring buffer consumer failed: ") + std::strerror(errno));
  return Status::Ok();
}

Result<uint64_t> BpfEventSource::AttachUprobes(const std::string& path, const std::vector<UprobeSpec>& specs,
                                               const std::vector<uint32_t>& pids) {
  std::vector<bpf_link*> links;
  auto undo = [&links] {
    for (bpf_link* l : links) bpf_link__destroy(l);
  };
  std::vector<int> targets;
  for (uint32_t pid : pids) targets.push_back(static_cast<int>(pid));
  if (targets.empty()) targets.push_back(-1);  // every process
  for (const UprobeSpec& spec : specs) {
    bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, spec.program.c_str());
    if (!prog) {
      undo();
      return Internal("no BPF program named " + spec.program);
    }
    for (int pid : targets) {
      LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = spec.retprobe);
      bpf_link* link = bpf_program__attach_uprobe_opts(prog, pid, path.c_str(), spec.file_offset, &opts);
      if (!link && pid != -1 && errno == ESRCH) continue;  // that process is gone
      if (!link) {
        const int err = errno;
        undo();
        return Unavailable("attaching " + spec.program + " to " + path + " at offset " +
                           std::to_string(spec.file_offset) + " failed: " + std::strerror(err));
      }
      links.push_back(link);
    }
  }
  std::lock_guard<std::mutex> lock(uprobe_mu_);
  const uint64_t handle = next_uprobe_handle_++;
  uprobes_[handle] = std::move(links);
  return handle;
}

void BpfEventSource::DetachUprobes(uint64_t handle) {
  std::vector<bpf_link*> links;
  {
    std::lock_guard<std::mutex> lock(uprobe_mu_);
    auto it = uprobes_.find(handle);
    if (it == uprobes_.end()) return;
    links = std::move(it->second);
    uprobes_.erase(it);
  }
  for (bpf_link* l : links) bpf_link__destroy(l);
}

Result<std::vector<ConnKey>> BpfEventSource::DropConnEntries(uint32_t tgid, unsigned kinds) {
  // Batched reads: one syscall per 1024 entries instead of two per entry. A hash map's
  // batch is whole buckets, so one call may return fewer; the loop ends at ENOENT.
  constexpr uint32_t kBatch = 1024;
  const int fd = bpf_map__fd(skel_->maps.ks_conns);
  std::vector<kspan_fd_key> keys(kBatch);
  std::vector<kspan_conn_state> values(kBatch);
  std::vector<kspan_fd_key> doomed;
  std::vector<ConnKey> dropped;
  uint64_t in_batch = 0, out_batch = 0;  // opaque bucket cursors (a u32 for a hash map)
  bool first = true;
  for (;;) {
    uint32_t count = kBatch;
    const int err = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch, keys.data(),
                                         values.data(), &count, nullptr);
    const int saved = errno;
    for (uint32_t i = 0; i < count && i < kBatch; ++i) {
      if (keys[i].tgid != tgid || values[i].kind >= 32 || !(kinds & (1u << values[i].kind))) continue;
      doomed.push_back(keys[i]);
      dropped.push_back(ConnKey{keys[i].tgid, keys[i].fd, values[i].generation});
    }
    if (err != 0) {
      if (saved == ENOENT) break;  // walked to the end
      return Internal(std::string("reading the kernel's fd map failed: ") + std::strerror(saved));
    }
    in_batch = out_batch;
    first = false;
  }
  // One syscall for all of them. The kernel stops at the first key that is gone (the
  // process closed it, or the LRU evicted it, meanwhile: fine); go on one by one after it.
  uint32_t done = static_cast<uint32_t>(doomed.size());
  if (!doomed.empty() && bpf_map_delete_batch(fd, doomed.data(), &done, nullptr) != 0) {
    for (size_t i = done; i < doomed.size(); ++i)
      bpf_map__delete_elem(skel_->maps.ks_conns, &doomed[i], sizeof(doomed[i]), 0);
  }
  return dropped;
}

Status BpfEventSource::SetSelected(uint32_t tgid, uint8_t verdict) {
  if (verdict > KSPAN_SELECTED_SKIP_UNTIL_LISTEN) {
    return InvalidArgument("selection verdict " + std::to_string(verdict) + " is not a kspan_select_value");
  }
  const uint8_t v = verdict;
  if (bpf_map__update_elem(skel_->maps.ks_select, &tgid, sizeof(tgid), &v, sizeof(v), BPF_ANY) != 0) {
    return Internal("telling the kernel whether process " + std::to_string(tgid) +
                    " is traced failed: " + std::strerror(errno));
  }
  return Status::Ok();
}

Status BpfEventSource::MarkAgent(uint32_t tgid, uint8_t flags) {
  constexpr uint8_t kKnown = KSPAN_AGENT_F_LOCAL | KSPAN_AGENT_F_STDIO;
  if (flags == 0 || (flags & ~kKnown) != 0) {
    return InvalidArgument("agent flags " + std::to_string(flags) +
                           " must be a non-empty set of KSPAN_AGENT_F_*");
  }
  std::lock_guard<std::mutex> lock(agent_mu_);
  // Before the first mark lands, so that the agent's first file is seen.
  if (!agent_programs_attached_) {
    AttachAgentPrograms();
    agent_programs_attached_ = true;
  }
  // First the mark, then the negative entries: in the other order a syscall in between
  // could cache an fd as not tracked again.
  if (bpf_map__update_elem(skel_->maps.ks_agent_tgids, &tgid, sizeof(tgid), &flags, sizeof(flags), BPF_ANY) !=
      0) {
    const int err = errno;
    if (err == E2BIG || err == ENOMEM) {
      return ResourceExhausted("cannot mark process " + std::to_string(tgid) +
                               " as an agent: the kernel map of agents is full (4096 processes)");
    }
    return Internal("marking process " + std::to_string(tgid) + " as an agent failed: " + std::strerror(err));
  }
  Result<std::vector<ConnKey>> dropped = DropConnEntries(tgid, 1u << KSPAN_FD_OTHER);
  if (!dropped.ok()) return dropped.status();
  log::Debug("agent marked", {{"pid", static_cast<uint64_t>(tgid)},
                              {"flags", static_cast<uint64_t>(flags)},
                              {"negative_entries_dropped", static_cast<uint64_t>(dropped->size())}});
  return Status::Ok();
}

void BpfEventSource::AttachAgentPrograms() {
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel_->obj) {
    const ProgramRow* row = FindProgramRow(bpf_program__name(prog));
    if (!row || row->attach != Attach::kWithAgents) continue;
    int err = 0;
    if (bpf_link* link = AttachOrWarn(prog, *row, &err)) agent_links_.push_back(link);
  }
  log::Debug("agent programs attached", {{"links", static_cast<uint64_t>(agent_links_.size())}});
}

Result<std::vector<ConnKey>> BpfEventSource::UnmarkAgent(uint32_t tgid) {
  std::lock_guard<std::mutex> lock(agent_mu_);
  if (bpf_map__delete_elem(skel_->maps.ks_agent_tgids, &tgid, sizeof(tgid), 0) != 0) {
    if (errno == ENOENT) return std::vector<ConnKey>{};
    return Internal("unmarking agent process " + std::to_string(tgid) + " failed: " + std::strerror(errno));
  }
  return DropConnEntries(tgid, (1u << KSPAN_FD_LOCAL) | (1u << KSPAN_FD_STDIO));
}

BpfEventSource::~BpfEventSource() {
  if (ring_) ring_buffer__free(ring_);
  {
    std::lock_guard<std::mutex> lock(uprobe_mu_);
    for (auto& [handle, links] : uprobes_) links_.insert(links_.end(), links.begin(), links.end());
    uprobes_.clear();
  }
  {
    std::lock_guard<std::mutex> lock(agent_mu_);
    links_.insert(links_.end(), agent_links_.begin(), agent_links_.end());
    agent_links_.clear();
  }
  // Each tracepoint link waits out an RCU grace period as it goes (~50 ms here): one after
  // another, 27 of them took 1.4 s. Destroyed from parallel threads the waits overlap.
  std::vector<std::thread> detachers;
  detachers.reserve(links_.size());
  for (bpf_link* link : links_) {
    try {
      detachers.emplace_back([link] { bpf_link__destroy(link); });
    } catch (const std::system_error&) {
      bpf_link__destroy(link);  // no thread to be had: detach here, just slower
    }
  }
  for (std::thread& t : detachers) t.join();
  links_.clear();
  if (skel_) kspan_bpf__destroy(skel_);
}

int BpfEventSource::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<BpfEventSource*>(ctx);
  self->records_->Add();
  if (DecodeRecord(data, size, self->clock_, self->sink_) != DecodeResult::kOk) self->malformed_->Add();
  return 0;
}

Result<int> BpfEventSource::Poll(EventSink* sink, std::chrono::milliseconds timeout) {
  sink_ = sink;
  // Producers do not wake us per event (BPF_RB_NO_WAKEUP), so epoll may sleep the whole
  // timeout with data waiting: always consume after the wait.
  int n = ring_buffer__poll(ring_, static_cast<int>(timeout.count()));
  if (n < 0 && n != -EINTR) {
    sink_ = nullptr;
    return Internal(std::string("ring buffer poll failed: ") + std::strerror(-n));
  }
  int m = ring_buffer__consume(ring_);
  sink_ = nullptr;
  if (m < 0 && m != -EINTR) return Internal(std::string("ring buffer consume failed: ") + std::strerror(-m));
  return std::max(n, 0) + std::max(m, 0);
}

std::array<uint64_t, KSPAN_CNT_MAX> BpfEventSource::ReadKernelCounters() const {
  std::array<uint64_t, KSPAN_CNT_MAX> out{};
  std::vector<uint64_t> per_cpu(static_cast<size_t>(possible_cpus_));
  for (uint32_t i = 0; i < KSPAN_CNT_MAX; ++i) {
    if (bpf_map__lookup_elem(skel_->maps.ks_counters, &i, sizeof(i), per_cpu.data(),
                             per_cpu.size() * sizeof(uint64_t), 0) != 0) {
      continue;
    }
    for (uint64_t v : per_cpu) out[i] += v;
  }
  return out;
}

}  // namespace kspan::events
