// Captures kspan's JSON log lines (common/log.h) in a temporary file for the life of the
// object, so a test can check what was logged. One at a time: the log output is global.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/log.h"
#include "testing/subprocess.h"

namespace kspan::testing {

class LogCapture {
 public:
  LogCapture() {
    char tmpl[] = "/tmp/kspan_log_XXXXXX";
    fd_ = mkstemp(tmpl);
    path_ = tmpl;
    log::SetOutputFd(fd_);
  }
  ~LogCapture() {
    log::SetOutputFd(2);
    close(fd_);
    unlink(path_.c_str());
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  // The lines logged so far whose "msg" starts with `msg_prefix`, parsed.
  std::vector<nlohmann::json> Lines(const std::string& msg_prefix) const {
    std::vector<nlohmann::json> out;
    const std::string all = ReadFileOrEmpty(path_);
    size_t at = 0;
    while (at < all.size()) {
      size_t end = all.find('\n', at);
      if (end == std::string::npos) end = all.size();
      const auto j = nlohmann::json::parse(all.substr(at, end - at), nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.value("msg", "").rfind(msg_prefix, 0) == 0) out.push_back(j);
      at = end + 1;
    }
    return out;
  }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace kspan::testing
