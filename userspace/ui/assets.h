// The web UI's files, embedded at build time (cmake/EmbedAssets.cmake from
// userspace/ui/assets/). Immutable, static storage.
#pragma once

#include <string_view>

namespace kspan::ui {

struct Asset {
  std::string_view name;          // "app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view data;
};

// The asset of that file name, or nullptr.
const Asset* FindAsset(std::string_view name);

}  // namespace kspan::ui
