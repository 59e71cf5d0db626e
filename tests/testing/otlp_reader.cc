#include "testing/otlp_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>

namespace kspan::testing {
namespace {

std::map<std::string, nlohmann::json> Attributes(const nlohmann::json& arr) {
  std::map<std::string, nlohmann::json> out;
  if (!arr.is_array()) return out;
  for (const auto& kv : arr) out[kv.at("key").get<std::string>()] = kv.at("value");
  return out;
}

uint64_t U64(const nlohmann::json& v) {
  if (v.is_string()) return std::stoull(v.get<std::string>());
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  return 0;
}

}  // namespace

std::string FlatSpan::Path() const {
  std::string p = Str("url.path");
  if (p.empty()) {
    const std::string full = Str("url.full");
    const size_t scheme = full.find("://");
    const size_t slash = scheme == std::string::npos ? std::string::npos : full.find('/', scheme + 3);
    if (slash != std::string::npos) p = full.substr(slash);
  }
  return p.substr(0, p.find_first_of("?#"));
}

std::string FlatSpan::Str(const std::string& key) const {
  auto it = attributes.find(key);
  if (it == attributes.end() || !it->second.contains("stringValue")) return "";
  return it->second["stringValue"].get<std::string>();
}

int64_t FlatSpan::Int(const std::string& key) const {
  auto it = attributes.find(key);
  if (it == attributes.end() || !it->second.contains("intValue")) return -1;
  const auto& v = it->second["intValue"];
  return v.is_string() ? std::stoll(v.get<std::string>()) : v.get<int64_t>();
}

bool FlatSpan::Bool(const std::string& key) const {
  auto it = attributes.find(key);
  if (it == attributes.end() || !it->second.contains("boolValue") || !it->second["boolValue"].is_boolean()) {
    return false;
  }
  return it->second["boolValue"].get<bool>();
}

double FlatSpan::Double(const std::string& key) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return std::nan("");
  if (it->second.contains("doubleValue") && it->second["doubleValue"].is_number()) {
    return it->second["doubleValue"].get<double>();
  }
  return it->second.contains("intValue") ? static_cast<double>(Int(key)) : std::nan("");
}

std::vector<std::string> FlatSpan::Strings(const std::string& key) const {
  std::vector<std::string> out;
  auto it = attributes.find(key);
  if (it == attributes.end() || !it->second.contains("arrayValue")) return out;
  for (const auto& v : it->second["arrayValue"].value("values", nlohmann::json::array())) {
    if (v.contains("stringValue")) out.push_back(v["stringValue"].get<std::string>());
  }
  return out;
}

const FlatEvent* FlatSpan::Event(const std::string& name) const {
  for (const FlatEvent& e : events) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::string FlatSpan::ResourceStr(const std::string& key) const {
  auto it = resource.find(key);
  if (it == resource.end() || !it->second.contains("stringValue")) return "";
  return it->second["stringValue"].get<std::string>();
}

std::vector<FlatSpan> ReadSpans(const std::string& path) {
  std::vector<FlatSpan> out;
  std::ifstream f(path);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // Only lines that end in a newline: a writer may be in the middle of the last one (the
  // tests read files that kspan or a receiver is still appending to).
  for (size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
    const std::string_view line(text.data() + at, nl - at);
    if (line.empty()) continue;
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << e.what() << ": " << line.substr(0, 200);
      continue;
    }
    for (const auto& rs : doc.value("resourceSpans", nlohmann::json::array())) {
      auto resource =
          Attributes(rs.value("resource", nlohmann::json::object()).value("attributes", nlohmann::json()));
      for (const auto& ss : rs.value("scopeSpans", nlohmann::json::array())) {
        for (const auto& s : ss.value("spans", nlohmann::json::array())) {
          FlatSpan fs;
          fs.trace_id = s.value("traceId", "");
          fs.span_id = s.value("spanId", "");
          fs.parent_span_id = s.value("parentSpanId", "");
          fs.trace_state = s.value("traceState", "");
          fs.name = s.value("name", "");
          fs.kind = s.value("kind", 0);
          if (s.contains("flags") && s["flags"].is_number_unsigned()) fs.flags = s["flags"].get<uint32_t>();
          fs.start_ns = U64(s.value("startTimeUnixNano", nlohmann::json("0")));
          fs.end_ns = U64(s.value("endTimeUnixNano", nlohmann::json("0")));
          if (s.contains("status")) {
            fs.status_code = s["status"].value("code", 0);
            fs.status_message = s["status"].value("message", "");
          }
          fs.attributes = Attributes(s.value("attributes", nlohmann::json()));
          fs.resource = resource;
          for (const auto& l : s.value("links", nlohmann::json::array())) {
            if (!l.is_object()) {
              ADD_FAILURE() << "a link that is not an object: " << l.dump();
              continue;
            }
            FlatLink fl;
            fl.trace_id = l.value("traceId", "");
            fl.span_id = l.value("spanId", "");
            fl.trace_state = l.value("traceState", "");
            fl.attributes = Attributes(l.value("attributes", nlohmann::json()));
            fs.links.push_back(std::move(fl));
          }
          for (const auto& e : s.value("events", nlohmann::json::array())) {
            FlatEvent fe;
            fe.name = e.value("name", "");
            fe.time_ns = U64(e.value("timeUnixNano", nlohmann::json("0")));
            fe.attributes = Attributes(e.value("attributes", nlohmann::json()));
            fs.events.push_back(std::move(fe));
          }
          out.push_back(std::move(fs));
        }
      }
    }
  }
  return out;
}

}  // namespace kspan::testing
