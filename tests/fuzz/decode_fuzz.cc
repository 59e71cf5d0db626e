// Fuzzes the ring-buffer record decoder: whatever bytes arrive, it must reject or decode
// them without reading out of bounds, and decoded data must lie inside the record.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "events/decode.h"
#include "kspan/bpf/events.h"

namespace {

struct CheckingSink : kspan::events::EventSink {
  const uint8_t* begin;
  size_t size;
  void OnConnOpen(const kspan::events::ConnOpenEvent&) override {}
  void OnData(const kspan::events::DataEvent& e) override {
    const auto* p = reinterpret_cast<const uint8_t*>(e.data.data());
    if (e.data.size() > e.total_len || p < begin || p + e.data.size() > begin + size) std::abort();
  }
  void OnConnClose(const kspan::events::ConnCloseEvent&) override {}
  void OnExec(const kspan::events::ProcessExecEvent& e) override {
    if (e.comm.size() > 16 || e.filename.size() > 256) std::abort();
    // At most two lines ("0::" and "1:memory:"), each at most every part and a '/' before it.
    if (e.cgroup.size() > 2 * (10 + KSPAN_CGROUP_PARTS * KSPAN_CGROUP_PART_LEN)) std::abort();
    if (!e.cgroup.empty() && !e.cgroup.starts_with("0::/") && !e.cgroup.starts_with("1:memory:/"))
      std::abort();
    if (!e.cgroup.empty() && e.cgroup.back() != '\n') std::abort();
  }
  void OnExit(const kspan::events::ProcessExitEvent&) override {}
  void OnFork(const kspan::events::ProcessForkEvent&) override {}
  void OnFileWrite(const kspan::events::FileWriteEvent& e) override {
    if (e.path.size() >= KSPAN_PATH_LEN) std::abort();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Copy into an exactly-sized buffer so ASan sees any overread.
  std::vector<uint8_t> buf(data, data + size);
  CheckingSink sink;
  sink.begin = buf.data();
  sink.size = buf.size();
  static const kspan::events::BootClock clock(0);
  kspan::events::DecodeRecord(buf.data(), buf.size(), clock, &sink);
  return 0;
}
