#include "process/selection.h"

#include <dirent.h>
#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "common/log.h"

namespace kspan::process {
namespace {

constexpr std::string_view kKeys =
    "exe, cmdline, port, container, netns, k8s.namespace, k8s.pod, k8s.owner, k8s.label.NAME";

bool Glob(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

Result<uint16_t> Port(std::string_view where, std::string_view rule, std::string_view s) {
  unsigned v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() || v == 0 || v > 65535) {
    return InvalidArgument(std::string(where) + ": '" + std::string(rule) + "': port '" + std::string(s) +
                           "' is not a number from 1 to 65535");
  }
  return static_cast<uint16_t>(v);
}

// Owner attributes in the order a workload is best named by.
constexpr std::string_view kOwnerKeys[] = {"k8s.deployment.name", "k8s.statefulset.name",
                                           "k8s.daemonset.name",  "k8s.cronjob.name",
                                           "k8s.job.name",        "k8s.replicaset.name"};

bool MatchesExceptPorts(const SelectRule& r, const ProcessFacts& f) {
  if (!r.exe.empty()) {
    const bool path = r.exe.find('/') != std::string::npos;
    if (!Glob(r.exe, path ? f.exe_path : f.exe_name)) return false;
  }
  if (!r.cmdline.empty() && !Glob(r.cmdline, f.command_line)) return false;
  if (r.netns != 0 && r.netns != f.netns) return false;
  if (!r.container.empty()) {
    if (f.container_id.empty()) return false;
    if (!f.container_id.starts_with(r.container) && !Glob(r.container, f.container_id)) return false;
  }
  if (r.needs_pod()) {
    if (!f.pod_known) return false;
    if (!r.k8s_namespace.empty() && !Glob(r.k8s_namespace, f.k8s_namespace)) return false;
    if (!r.k8s_pod.empty() && !Glob(r.k8s_pod, f.k8s_pod)) return false;
    if (!r.k8s_owner.empty() && !Glob(r.k8s_owner, f.k8s_owner)) return false;
    for (const auto& [name, glob] : r.k8s_labels) {
      const auto it = std::find_if(f.k8s_labels.begin(), f.k8s_labels.end(),
                                   [&name = name](const auto& l) { return l.first == name; });
      if (it == f.k8s_labels.end() || !Glob(glob, it->second)) return false;
    }
  }
  return true;
}

bool PortsMatch(const SelectRule& r, const ProcessFacts& f) {
  for (const PortRange& p : r.ports) {
    for (uint16_t port : f.listening_ports) {
      if (port >= p.lo && port <= p.hi) return true;
    }
  }
  return r.ports.empty();
}

}  // namespace

uint64_t NetnsInode(const std::string& proc_root, const std::string& pid) {
  char buf[64];
  const std::string path = proc_root + "/" + pid + "/ns/net";
  const ssize_t n = readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return 0;
  const std::string_view link(buf, static_cast<size_t>(n));  // "net:[4026531840]"
  if (!link.starts_with("net:[") || !link.ends_with("]")) return 0;
  uint64_t inode = 0;
  const auto r = std::from_chars(link.data() + 5, link.data() + link.size() - 1, inode);
  return r.ec == std::errc() && r.ptr == link.data() + link.size() - 1 ? inode : 0;
}

namespace {

// LISTEN sockets of one /proc/PID/net/tcp{,6} table: inode -> local port.
void ReadListeners(const std::string& path, std::unordered_map<uint64_t, uint16_t>* out) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, local, remote, st, queues, timer, retr, uid, timeout, inode;
    if (!(fields >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode))
      continue;
    if (st != "0A") continue;  // TCP_LISTEN
    const size_t colon = local.rfind(':');
    if (colon == std::string::npos) continue;
    unsigned port = 0;
    uint64_t ino = 0;
    const std::string_view p(local.data() + colon + 1, local.size() - colon - 1);
    if (std::from_chars(p.data(), p.data() + p.size(), port, 16).ec != std::errc() || port > 65535) continue;
    if (std::from_chars(inode.data(), inode.data() + inode.size(), ino).ec != std::errc() || ino == 0)
      continue;
    (*out)[ino] = static_cast<uint16_t>(port);
  }
}

}  // namespace

Result<SelectRule> ParseSelectRule(std::string_view where, std::string_view text) {
  SelectRule rule;
  rule.text = std::string(text);
  const std::string w(where), t(text);
  if (text.empty()) return InvalidArgument(w + ": an empty rule; criteria are " + std::string(kKeys));
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('&', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view part = text.substr(start, end - start);
    start = end + 1;
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == part.size()) {
      return InvalidArgument(w + ": '" + t + "': '" + std::string(part) +
                             "' is not KEY=VALUE (keys: " + std::string(kKeys) + "; join criteria with '&')");
    }
    const std::string_view key = part.substr(0, eq);
    const std::string value(part.substr(eq + 1));
    auto set_once = [&](std::string* field) -> Status {
      if (!field->empty())
        return InvalidArgument(w + ": '" + t + "': " + std::string(key) + " is given twice");
      *field = value;
      return Status::Ok();
    };
    if (key == "exe") {
      RETURN_IF_ERROR(set_once(&rule.exe));
    } else if (key == "cmdline") {
      RETURN_IF_ERROR(set_once(&rule.cmdline));
    } else if (key == "container") {
      RETURN_IF_ERROR(set_once(&rule.container));
    } else if (key == "netns") {
      if (rule.netns != 0) return InvalidArgument(w + ": '" + t + "': netns is given twice");
      uint64_t inode = 0;
      const auto r = std::from_chars(value.data(), value.data() + value.size(), inode);
      if (value == "self") {
        inode = NetnsInode("/proc", "self");
      } else if (r.ec != std::errc() || r.ptr != value.data() + value.size()) {
        inode = 0;
      }
      if (inode == 0) {
        return InvalidArgument(w + ": '" + t + "': netns '" + value +
                               "' is neither self nor a namespace inode (ls -l /proc/PID/ns/net: net:[N])");
      }
      rule.netns = inode;
    } else if (key == "k8s.namespace") {
      RETURN_IF_ERROR(set_once(&rule.k8s_namespace));
    } else if (key == "k8s.pod") {
      RETURN_IF_ERROR(set_once(&rule.k8s_pod));
    } else if (key == "k8s.owner") {
      RETURN_IF_ERROR(set_once(&rule.k8s_owner));
    } else if (key.starts_with("k8s.label.") && key.size() > 10) {
      rule.k8s_labels.emplace_back(std::string(key.substr(10)), value);
    } else if (key == "port") {
      const size_t dash = value.find('-');
      PortRange range;
      ASSIGN_OR_RETURN(range.lo, Port(where, text, std::string_view(value).substr(0, dash)));
      range.hi = range.lo;
      if (dash != std::string::npos) {
        ASSIGN_OR_RETURN(range.hi, Port(where, text, std::string_view(value).substr(dash + 1)));
        if (range.hi < range.lo) {
          return InvalidArgument(w + ": '" + t + "': the port range " + value + " ends before it starts");
        }
      }
      rule.ports.push_back(range);
    } else {
      return InvalidArgument(w + ": '" + t + "': unknown criterion '" + std::string(key) +
                             "' (keys: " + std::string(kKeys) + ")");
    }
    if (end == text.size()) break;
  }
  return rule;
}

bool Matches(const SelectRule& rule, const ProcessFacts& facts) {
  return MatchesExceptPorts(rule, facts) && PortsMatch(rule, facts);
}

bool Selected(const SelectionRules& rules, const ProcessFacts& facts) {
  auto any = [&](const std::vector<SelectRule>& v) {
    return std::any_of(v.begin(), v.end(), [&](const SelectRule& r) { return Matches(r, facts); });
  };
  return (rules.include.empty() || any(rules.include)) && !any(rules.exclude);
}

std::vector<uint16_t> ListeningPorts(const std::string& proc_root, uint32_t pid, size_t max_fds) {
  const std::string dir = proc_root + "/" + std::to_string(pid);
  std::unordered_map<uint64_t, uint16_t> listeners;
  ReadListeners(dir + "/net/tcp", &listeners);
  ReadListeners(dir + "/net/tcp6", &listeners);
  std::vector<uint16_t> ports;
  if (listeners.empty()) return ports;
  DIR* d = opendir((dir + "/fd").c_str());
  if (!d) return ports;
  size_t seen = 0;
  while (dirent* ent = readdir(d)) {
    if (ent->d_name[0] == '.') continue;
    if (++seen > max_fds) break;
    char target[64];
    const ssize_t n = readlinkat(dirfd(d), ent->d_name, target, sizeof(target) - 1);
    if (n <= 9) continue;
    const std::string_view link(target, static_cast<size_t>(n));
    if (!link.starts_with("socket:[") || link.back() != ']') continue;
    uint64_t ino = 0;
    if (std::from_chars(link.data() + 8, link.data() + link.size() - 1, ino).ec != std::errc()) continue;
    if (auto it = listeners.find(ino); it != listeners.end()) ports.push_back(it->second);
  }
  closedir(d);
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

Selection::Selection(SelectionOptions options, ProcessTable* processes, metrics::Registry* m)
    : options_(std::move(options)), processes_(processes) {
  for (const auto* list : {&options_.rules.include, &options_.rules.exclude}) {
    for (const SelectRule& r : *list) {
      rules_need_ports_ |= r.needs_ports();
      rules_need_pod_ |= r.needs_pod();
      rules_need_netns_ |= r.netns != 0;
    }
  }
  traced_ = m->GetCounter("kspan_selection_decisions_total", {{"decision", "traced"}});
  skipped_ = m->GetCounter("kspan_selection_decisions_total", {{"decision", "skipped"}});
  changed_ = m->GetCounter("kspan_selection_changes_total");
  dropped_skipped_ = m->GetCounter("kspan_selection_events_dropped_total", {{"reason", "skipped"}});
  dropped_pending_ = m->GetCounter("kspan_selection_events_dropped_total", {{"reason", "pending"}});
  kernel_failed_ = m->GetCounter("kspan_selection_kernel_updates_failed_total");
  listens_ = m->GetCounter("kspan_selection_listens_total");
}

ProcessFacts Selection::FactsOf(uint32_t pid, const Decision& d, bool* pod_wanted) {
  ProcessFacts f;
  *pod_wanted = false;
  processes_->Touch(pid);
  const ProcessInfo* p = processes_->Find(pid);
  if (p) {
    f.exe_path = p->exe_path;
    f.exe_name = p->exe_name;
    for (const std::string& a : p->argv) {
      if (!f.command_line.empty()) f.command_line += ' ';
      f.command_line += a;
    }
    f.container_id = p->container.id;
  }
  if (rules_need_netns_) {
    f.netns = NetnsInode(options_.proc_root, std::to_string(pid));
    if (f.netns == 0 && p) f.netns = p->netns;  // gone: where its exec (or parent) left it
  }
  if (rules_need_ports_) {
    f.listening_ports = ListeningPorts(options_.proc_root, pid);
    for (uint16_t port : d.accepted) {
      if (!std::binary_search(f.listening_ports.begin(), f.listening_ports.end(), port)) {
        f.listening_ports.insert(std::upper_bound(f.listening_ports.begin(), f.listening_ports.end(), port),
                                 port);
      }
    }
  }
  if (rules_need_pod_ && p && options_.pods && (!p->container.id.empty() || !p->container.pod_uid.empty())) {
    const auto attrs = options_.pods->Attributes(p->container);
    if (attrs.empty()) {
      *pod_wanted = true;
    } else {
      f.pod_known = true;
      for (const auto& [k, v] : attrs) {
        if (k == "k8s.namespace.name") f.k8s_namespace = v;
        if (k == "k8s.pod.name") f.k8s_pod = v;
      }
      for (std::string_view key : kOwnerKeys) {
        const auto it =
            std::find_if(attrs.begin(), attrs.end(), [&](const auto& a) { return a.first == key; });
        if (it != attrs.end()) {
          f.k8s_owner = it->second;
          break;
        }
      }
      f.k8s_labels = options_.pods->Labels(p->container);
    }
  }
  return f;
}

void Selection::TellKernel(uint32_t pid, const Decision& d) {
  if (!options_.tell_kernel) return;
  const KernelVerdict v = d.state != State::kSkipped ? KernelVerdict::kTrace
                          : d.recheck                ? KernelVerdict::kSkipUntilListen
                                                     : KernelVerdict::kSkip;
  if (Status st = options_.tell_kernel(pid, v); !st.ok()) {
    kernel_failed_->Add();
    log::Debug("selection not told to the kernel", {{"pid", uint64_t{pid}}, {"error", st.message()}});
  }
}

bool Selection::Apply(uint32_t pid, Decision* d, State s, uint64_t now_ns) {
  const bool known = d->state != State::kPending;
  if (known && d->state == s) return false;
  if (known) changed_->Add();
  // The kernel traces an undecided process by default (and a --pid one is already 1), so
  // only a skip, or a change back from one, needs telling.
  const bool tell = s == State::kSkipped || (known && d->state == State::kSkipped);
  d->state = s;
  if (s == State::kTraced) traced_->Add();
  if (s == State::kSkipped) skipped_->Add();
  if (tell) {
    TellKernel(pid, *d);
    d->told_ns = now_ns;
  }
  return tell;
}

Selection::Decision& Selection::Fresh(uint32_t pid, uint64_t now_ns) {
  Decision& d = decisions_[pid];
  d = Decision{};
  d.first_ns = now_ns;
  order_.push_back(pid);
  while (decisions_.size() > options_.max_processes && !order_.empty()) {
    const uint32_t old = order_.front();
    order_.pop_front();
    if (old != pid) decisions_.erase(old);
  }
  // Exits leave their pids in order_: drop them now and then, so it stays bounded too.
  if (order_.size() > 2 * options_.max_processes + 64) {
    std::erase_if(order_, [this](uint32_t p) { return !decisions_.contains(p); });
  }
  return decisions_.at(pid);
}

Selection::Decision& Selection::Decide(uint32_t pid, uint64_t now_ns, bool fresh, uint16_t accepted_port) {
  auto found = decisions_.find(pid);
  Decision& d = found == decisions_.end() || fresh ? Fresh(pid, now_ns) : found->second;
  if (accepted_port != 0 && d.accepted.size() < 8 &&
      std::find(d.accepted.begin(), d.accepted.end(), accepted_port) == d.accepted.end()) {
    d.accepted.push_back(accepted_port);
  }
  bool pod_wanted = false;
  const ProcessFacts facts = FactsOf(pid, d, &pod_wanted);
  if (pod_wanted && now_ns - d.first_ns < options_.max_pod_wait_ns) {
    d.state = State::kPending;
    d.next_check = now_ns + 1'000'000'000;
  } else {
    d.recheck = false;
    if (rules_need_ports_) {
      for (const auto* list : {&options_.rules.include, &options_.rules.exclude}) {
        for (const SelectRule& r : *list) d.recheck |= r.needs_ports() && MatchesExceptPorts(r, facts);
      }
    }
    const bool told =
        Apply(pid, &d, Selected(options_.rules, facts) ? State::kTraced : State::kSkipped, now_ns);
    d.next_check = now_ns + options_.recheck_interval_ns;
    // The kernel reports its listen() calls only from now on: one between the look at /proc
    // above and now would go unseen until the next periodic look. So look once more.
    if (told && d.state == State::kSkipped && d.recheck) {
      for (uint16_t port : ListeningPorts(options_.proc_root, pid)) {
        if (!std::binary_search(facts.listening_ports.begin(), facts.listening_ports.end(), port)) {
          return Decide(pid, now_ns, false, port);
        }
      }
    }
  }
  if ((d.recheck || d.state == State::kPending) && !d.queued) {
    d.queued = true;
    checks_.push_back(pid);
  }
  return d;
}

bool Selection::Traced(uint32_t pid, uint64_t now_ns, uint16_t accepted_port) {
  if (!active()) return true;
  auto it = decisions_.find(pid);
  Decision* found = it != decisions_.end() ? &it->second : nullptr;
  if (accepted_port != 0 && rules_need_ports_ &&
      (!found || (found->recheck && std::find(found->accepted.begin(), found->accepted.end(),
                                              accepted_port) == found->accepted.end()))) {
    // A port it listens on, maybe new since it was decided: decide (again) with it before
    // its first connection on that port goes anywhere.
    found = &Decide(pid, now_ns, !found, accepted_port);
  }
  Decision& d = found ? *found : Decide(pid, now_ns, true);
  switch (d.state) {
    case State::kTraced: return true;
    case State::kSkipped:
      dropped_skipped_->Add();
      // Still arriving a second after the kernel was told: its entry was lost (the map
      // is an LRU), so tell it again.
      if (now_ns - d.told_ns >= 1'000'000'000) {
        TellKernel(pid, d);
        d.told_ns = now_ns;
      }
      return false;
    case State::kPending: dropped_pending_->Add(); return false;
  }
  return true;
}

bool Selection::OnExec(uint32_t pid, uint64_t now_ns) {
  if (!active()) return true;
  // The kernel dropped pid's entry at exec, but a skip written for the program before
  // (while its exec event waited here) may have landed after that: `ip netns exec NS
  // curl` is decided skipped as ip, in the namespace it starts in, and curl's syscalls
  // would be skipped in the kernel for good. Decided anew, so say it again.
  const auto before = decisions_.find(pid);
  const bool skip_may_linger = before != decisions_.end() && before->second.state == State::kSkipped;
  Decision& d = Decide(pid, now_ns, true);
  if (skip_may_linger && d.state != State::kSkipped) {
    TellKernel(pid, d);
    d.told_ns = now_ns;
  }
  return d.state == State::kTraced;
}

void Selection::OnFork(uint32_t pid, uint32_t ppid, uint64_t now_ns) {
  if (!active() || pid == ppid) return;
  const auto parent = decisions_.find(ppid);
  if (parent == decisions_.end() || parent->second.state == State::kPending) return;
  const Decision inherited = parent->second;  // a copy first: Fresh() may forget the parent
  Decision& d = Fresh(pid, now_ns);
  d.recheck = inherited.recheck;
  d.accepted = inherited.accepted;
  d.next_check = now_ns + options_.recheck_interval_ns;
  d.state = inherited.state;
  (d.state == State::kTraced ? traced_ : skipped_)->Add();
  // The kernel copied the parent's verdict at the fork when it had one. When it had none
  // (the parent was decided after the fork), a skip is not written now: read a drain
  // (~10 ms) after the fork, the child may have exec'd since, and the skip would cut the
  // new program off mid-flight until its exec event is read. The child's events are
  // dropped here (counted), and the kernel is told if they still come a second later
  // (Traced), when any exec would have been read and decided.
  d.told_ns = now_ns;
  if (d.recheck && !d.queued) {
    d.queued = true;
    checks_.push_back(pid);
  }
}

void Selection::OnListen(uint32_t pid, uint64_t now_ns, uint16_t port) {
  if (!active() || port == 0 || !rules_need_ports_) return;
  listens_->Add();
  Decision& d = Decide(pid, now_ns, false, port);
  // The kernel traces it since the listen(): a decision that did not change says so too.
  if (d.state == State::kSkipped) {
    TellKernel(pid, d);
    d.told_ns = now_ns;
  }
}

void Selection::OnExit(uint32_t pid) {
  decisions_.erase(pid);
}

void Selection::Tick(uint64_t now_ns) {
  size_t budget = std::min(options_.max_rechecks_per_tick, checks_.size());
  while (budget-- > 0) {
    const uint32_t pid = checks_.front();
    checks_.pop_front();
    auto it = decisions_.find(pid);
    if (it == decisions_.end() || !it->second.queued) continue;
    Decision& d = it->second;
    d.queued = false;
    if (!d.recheck && d.state != State::kPending) continue;
    if (d.next_check > now_ns) {
      d.queued = true;
      checks_.push_back(pid);
      continue;
    }
    Decide(pid, now_ns, false);  // queues it again while it still needs looking at
  }
}

}  // namespace kspan::process
