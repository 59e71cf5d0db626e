// Small builders of model values for unit tests: ids from hex, a resource.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "model/span.h"

namespace kspan::testing {

inline model::TraceId TraceIdFrom(std::string_view hex) {
  model::TraceId id;
  EXPECT_TRUE(model::ParseHexId(hex, id.bytes.data(), 16));
  return id;
}

inline model::SpanId SpanIdFrom(std::string_view hex) {
  model::SpanId id;
  EXPECT_TRUE(model::ParseHexId(hex, id.bytes.data(), 8));
  return id;
}

// A resource with service.name and process.pid.
inline std::shared_ptr<const model::Resource> MakeResource(std::string service, int64_t pid) {
  auto r = std::make_shared<model::Resource>();
  r->attributes.push_back({"service.name", std::move(service)});
  r->attributes.push_back({"process.pid", pid});
  return r;
}

}  // namespace kspan::testing
