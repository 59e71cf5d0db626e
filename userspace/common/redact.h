// Secrets out of free text kspan was asked to export (opt-in prompt and completion
// content): each credential-looking token is replaced by "REDACTED", the rest kept.
//
//   token                                         example
//   --------------------------------------------  ---------------------------------------
//   API keys with a vendor prefix, 16+ key chars  sk-…, sk-ant-…, sk-proj-…, pk-…, rk-…,
//                                                 ghp_…, gho_…, github_pat_…, glpat-…,
//                                                 xoxb-…/xoxp-…, hf_…, AIza…, AKIA…/ASIA…
//   an Authorization scheme's credentials         "Bearer abc…", "Basic dXNl…"
//   JSON Web Tokens                               eyJ….eyJ….sig
//   key=value / "key": "value" for secret keys    password=…, api_key: …, "token":"…"
//
// Key characters are [A-Za-z0-9_-]. The scan is one pass with bounded look-ahead per
// position: linear in the text. It errs towards redacting: a 16-character word after
// "sk-" is taken for a key.
#pragma once

#include <string>
#include <string_view>

namespace kspan {

inline constexpr std::string_view kRedacted = "REDACTED";

std::string RedactSecrets(std::string_view text);
// RedactSecrets on `text` in place, allocating only when something is redacted: true when
// it changed.
bool RedactSecretsInPlace(std::string* text);

}  // namespace kspan
