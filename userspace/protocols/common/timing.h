// When and on which thread a message crossed a socket or pipe: the one timing type every
// protocol's frames, requests and records share.
#pragma once

#include <cstdint>

namespace kspan::protocols {

// The syscalls that moved a message's first and last byte. Times are Unix ns: the entry of
// a send, the exit of a receive. `turn` is the thread's event-loop turn at that syscall
// (events::DataEvent::turn; 0: unknown).
struct Timing {
  uint64_t start_ns = 0;
  uint64_t end_ns = 0;
  uint32_t tid = 0;
  uint32_t turn = 0;
  uint32_t end_tid = 0;
  uint32_t end_turn = 0;

  // A message that starts and ends with one syscall.
  static Timing At(uint64_t ns, uint32_t tid, uint32_t turn) { return {ns, ns, tid, turn, tid, turn}; }
  // The message's last byte moved at `ns`, on `tid` in `turn`.
  void ExtendTo(uint64_t ns, uint32_t tid_at_end, uint32_t turn_at_end) {
    end_ns = ns;
    end_tid = tid_at_end;
    end_turn = turn_at_end;
  }
  bool operator==(const Timing&) const = default;
};

}  // namespace kspan::protocols
