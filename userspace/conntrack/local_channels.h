// Agents' local channels: the pipes and Unix stream sockets of processes the kernel was
// told to watch (agents and the tool servers they exec), and their stdout/stderr writes.
//
// Requests and answers of a local protocol travel on different channels of one process
// (an agent writes its tool server's stdin and reads its stdout), so a process-scoped
// protocol (protocols::Scope::kProcess; JSON-RPC lines) gets one ProtocolConnection per
// process fed by all its channels, each channel an id. Records come back with their
// channel's ConnInfo. stdout/stderr bytes go to TrackerSinks::on_output as they come.
//
//   pipe/unix event ──▶ Channel{id, ConnInfo} ──▶ the process's ProtocolConnection
//   stdout/stderr   ──▶ on_output
//
// Bounded by the kernel's marking (only agent processes have local channels) and by each
// protocol's own bounds. A call whose channel closed before its record came out is counted
// (kspan_records_dropped_total{reason="channel_closed"}). Single-threaded: the pipeline thread.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "conntrack/conn_info.h"
#include "events/events.h"
#include "protocols/registry.h"

namespace kspan::conntrack {

class LocalChannels {
 public:
  // `counters`: the tracker's, by protocol index (outlives this).
  LocalChannels(metrics::Registry* metrics, const TrackerSinks* sinks,
                std::vector<ProtocolCounters>* counters);
  ~LocalChannels();

  // True for the kinds this class owns (kUnix, kPipe, kStdout, kStderr).
  static bool Owns(events::ConnKind kind);
  void OnOpen(const events::ConnOpenEvent& e);
  // False when `e` is not on a channel or stdio stream opened here (the tracker's then).
  bool OnData(const events::DataEvent& e);
  bool OnClose(const events::ConnCloseEvent& e);
  // The process ended (at ts_ns, 0: unknown): its channels end with it (the kernel sends no
  // close for them); a call it still waited for lasts until then (Record::given_up_ns).
  void OnProcessExit(uint32_t pid, uint64_t ts_ns = 0);
  // Parses the processes whose channels got bytes since the last call.
  void DrainPending();
  void CloseAll();

 private:
  struct Channel {
    uint64_t id = 0;
    ConnInfo info;
  };
  struct Process {
    std::unique_ptr<protocols::ProtocolConnection> parser;
    bool dirty = false;
  };
  // `exited_ns`: the process's exit, the end of the calls it leaves waiting (0: it lives).
  void Drain(uint32_t pid, Process& p, uint64_t exited_ns = 0);
  void EraseProcess(uint32_t pid);
  // Closes pid's parser (calls still waiting are unanswered for `waiting`), drains it and
  // forgets the process, which exited at `exited_ns` (0: not known, or kspan stops).
  void CloseProcess(uint32_t pid, protocols::Unanswered waiting, uint64_t exited_ns = 0);

  const TrackerSinks* sinks_;
  std::vector<ProtocolCounters>* counters_;
  const protocols::ProtocolSpec* spec_ = nullptr;  // the local protocol (null: none)
  size_t proto_ = 0;
  std::unordered_map<events::ConnKey, Channel, events::ConnKeyHash> channels_;
  std::unordered_map<uint64_t, events::ConnKey> channel_keys_;  // by Channel::id
  uint64_t next_channel_ = 1;
  std::unordered_map<uint32_t, Process> processes_;
  std::unordered_map<events::ConnKey, bool, events::ConnKeyHash> stdio_;  // true: stderr
  std::vector<uint32_t> dirty_;
  std::vector<protocols::RequestStart> started_;  // reused scratch
  std::vector<protocols::Record> records_;
  metrics::Counter* channel_closed_ = nullptr;
};

}  // namespace kspan::conntrack
