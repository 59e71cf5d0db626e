// What the event source hands decoded events to. Called on the polling thread only, one
// event at a time, in ring-buffer order. DataEvent::data points into the ring buffer and
// is valid only during OnData.
#pragma once

#include "events/events.h"

namespace kspan::events {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnConnOpen(const ConnOpenEvent& e) = 0;
  virtual void OnData(const DataEvent& e) = 0;
  virtual void OnConnClose(const ConnCloseEvent& e) = 0;
  virtual void OnExec(const ProcessExecEvent& e) = 0;
  virtual void OnExit(const ProcessExitEvent& e) = 0;
  // A sink that does not follow TLS objects ignores these.
  virtual void OnTlsBind(const TlsBindEvent& /*e*/) {}
  // A sink that does not follow agents' file writes ignores these.
  virtual void OnFileWrite(const FileWriteEvent& /*e*/) {}
  // A sink without port rules ignores these (the kernel sends them only for processes
  // user space marked "skipped until it listens").
  virtual void OnListen(const ListenEvent& /*e*/) {}
  // A sink without selection rules ignores these (the kernel sends them only with rules).
  virtual void OnFork(const ProcessForkEvent& /*e*/) {}
};

}  // namespace kspan::events
