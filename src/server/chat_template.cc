// Chat templates: family detection and one formatter per family (formats and rules in the header).
#include "server/chat_template.h"

#include <optional>
#include <string>
#include <vector>

namespace cw::server {
namespace {

enum class Role { kSystem, kUser, kAssistant };

struct FamilyName {
  const char* name;
  ChatFamily family;
};

constexpr FamilyName kFamilyNames[] = {
    {"llama-2", ChatFamily::kLlama2}, {"llama-3", ChatFamily::kLlama3}, {"chatml", ChatFamily::kChatml},
    {"mistral", ChatFamily::kMistral}, {"phi-3", ChatFamily::kPhi3},     {"gemma", ChatFamily::kGemma},
    {"zephyr", ChatFamily::kZephyr},
};

// A client-supplied string made safe for a one-line error: control bytes become '?', long text is cut.
std::string quote_for_error(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > kMax) out += "...";
  out += "\"";
  return out;
}

bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

std::optional<Role> parse_role(std::string_view role) {
  if (role == "system") return Role::kSystem;
  if (role == "user") return Role::kUser;
  if (role == "assistant") return Role::kAssistant;
  return std::nullopt;
}

// A message after validation; content points into the caller's ChatMessage.
struct Turn {
  Role role;
  std::string_view content;
};

// Families without a system role (and llama-2's <<SYS>> block): system text is held and attached to the
// next user message; several are joined with "\n\n"; held text that no user message follows becomes a user
// turn of its own. Each formatter decides how `system` is written into the user turn.
struct MergedTurn {
  Role role;  // kUser or kAssistant
  std::string content;
  std::string system;  // the held system text for this user turn ("" when none)
  bool has_system = false;
};

std::vector<MergedTurn> merge_system_into_users(const std::vector<Turn>& turns) {
  std::vector<MergedTurn> out;
  std::string held;
  bool holding = false;
  for (const Turn& t : turns) {
    if (t.role == Role::kSystem) {
      if (holding) held += "\n\n";
      held += t.content;
      holding = true;
      continue;
    }
    MergedTurn m{t.role, std::string(t.content), {}, false};
    if (t.role == Role::kUser && holding) {
      m.system = std::move(held);
      m.has_system = true;
      held.clear();
      holding = false;
    }
    out.push_back(std::move(m));
  }
  if (holding) out.push_back({Role::kUser, std::move(held), {}, false});
  return out;
}

const char* role_text(Role r) {
  switch (r) {
    case Role::kSystem: return "system";
    case Role::kUser: return "user";
    case Role::kAssistant: return "assistant";
  }
  return "user";
}

void render_chatml(const std::vector<Turn>& turns, bool gen, std::string& out) {
  for (const Turn& t : turns) {
    out += "<|im_start|>";
    out += role_text(t.role);
    out += '\n';
    out += t.content;
    out += "<|im_end|>\n";
  }
  if (gen) out += "<|im_start|>assistant\n";
}

void render_llama3(const std::vector<Turn>& turns, bool gen, std::string& out) {
  for (const Turn& t : turns) {
    out += "<|start_header_id|>";
    out += role_text(t.role);
    out += "<|end_header_id|>\n\n";
    out += trim(t.content);
    out += "<|eot_id|>";
  }
  if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
}

// Role tag on its own line, content, end marker, newline: phi-3 ("<|end|>") and zephyr ("</s>").
void render_tagged(const std::vector<Turn>& turns, bool gen, std::string_view end_marker, bool skip_empty_system,
                   std::string& out) {
  for (const Turn& t : turns) {
    if (skip_empty_system && t.role == Role::kSystem && t.content.empty()) continue;
    out += "<|";
    out += role_text(t.role);
    out += "|>\n";
    out += t.content;
    out += end_marker;
    out += '\n';
  }
  if (gen) out += "<|assistant|>\n";
}

void render_llama2(const std::vector<Turn>& turns, std::string& out) {
  for (const MergedTurn& m : merge_system_into_users(turns)) {
    if (m.role == Role::kUser) {
      std::string content;
      if (m.has_system) {
        content = "<<SYS>>\n" + m.system + "\n<</SYS>>\n\n";
      }
      content += m.content;
      if (!out.empty()) out += "<s>";  // turn-opening BOS inside the history; the leading one is the tokenizer's
      out += "[INST] ";
      out += trim(content);
      out += " [/INST]";
    } else {
      out += ' ';
      out += trim(m.content);
      out += " </s>";
    }
  }
}

void render_mistral(const std::vector<Turn>& turns, std::string& out) {
  for (const MergedTurn& m : merge_system_into_users(turns)) {
    if (m.role == Role::kUser) {
      out += "[INST] ";
      if (m.has_system) {
        out += m.system;
        out += "\n\n";
      }
      out += m.content;
      out += " [/INST]";
    } else {
      out += m.content;
      out += "</s>";
    }
  }
}

void render_gemma(const std::vector<Turn>& turns, bool gen, std::string& out) {
  for (const MergedTurn& m : merge_system_into_users(turns)) {
    out += "<start_of_turn>";
    out += m.role == Role::kAssistant ? "model" : "user";
    out += '\n';
    if (m.has_system) {
      out += m.system;
      out += "\n\n";
    }
    out += trim(m.content);
    out += "<end_of_turn>\n";
  }
  if (gen) out += "<start_of_turn>model\n";
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

}  // namespace

const char* chat_family_name(ChatFamily family) {
  for (const FamilyName& f : kFamilyNames) {
    if (f.family == family) return f.name;
  }
  return "chatml";
}

const char* chat_end_of_turn(ChatFamily family) {
  switch (family) {
    case ChatFamily::kChatml: return "<|im_end|>";
    case ChatFamily::kLlama3: return "<|eot_id|>";
    case ChatFamily::kPhi3: return "<|end|>";
    case ChatFamily::kGemma: return "<end_of_turn>";
    case ChatFamily::kLlama2:
    case ChatFamily::kMistral:
    case ChatFamily::kZephyr: return "</s>";
  }
  return "<|im_end|>";
}

Result<ChatFamily> parse_chat_family(std::string_view name) {
  for (const FamilyName& f : kFamilyNames) {
    if (name == f.name) return f.family;
  }
  if (name == "qwen") return ChatFamily::kChatml;
  std::string names;
  for (const FamilyName& f : kFamilyNames) {
    if (!names.empty()) names += ", ";
    names += f.name;
  }
  return invalid_argument("unknown chat template " + quote_for_error(name) + "; expected one of: " + names +
                          " (qwen = chatml)");
}

ChatFamily detect_chat_family(std::string_view tmpl, bool* recognised) {
  std::optional<ChatFamily> family;
  if (contains(tmpl, "<|im_start|>")) {
    family = ChatFamily::kChatml;
  } else if (contains(tmpl, "<|start_header_id|>")) {
    family = ChatFamily::kLlama3;
  } else if (contains(tmpl, "<start_of_turn>")) {
    family = ChatFamily::kGemma;
  } else if (contains(tmpl, "[INST]")) {
    family = contains(tmpl, "<<SYS>>") ? ChatFamily::kLlama2 : ChatFamily::kMistral;
  } else if (contains(tmpl, "<|end|>") && (contains(tmpl, "<|user|>") || contains(tmpl, "<|assistant|>"))) {
    family = ChatFamily::kPhi3;
  } else if (contains(tmpl, "<|user|>") && (contains(tmpl, "</s>") || contains(tmpl, "eos_token"))) {
    family = ChatFamily::kZephyr;
  }
  if (recognised != nullptr) *recognised = family.has_value();
  return family.value_or(ChatFamily::kChatml);
}

Result<std::string> render_chat(ChatFamily family, std::span<const ChatMessage> messages,
                                bool add_generation_prompt) {
  if (messages.empty()) return invalid_argument("chat: no messages (at least one is required)");
  std::vector<Turn> turns;
  turns.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::optional<Role> role = parse_role(messages[i].role);
    if (!role) {
      return invalid_argument("chat: message " + std::to_string(i) + " has unknown role " +
                              quote_for_error(messages[i].role) + " (expected system, user or assistant)");
    }
    turns.push_back({*role, messages[i].content});
  }

  std::string out;
  switch (family) {
    case ChatFamily::kChatml: render_chatml(turns, add_generation_prompt, out); break;
    case ChatFamily::kLlama3: render_llama3(turns, add_generation_prompt, out); break;
    case ChatFamily::kLlama2: render_llama2(turns, out); break;
    case ChatFamily::kMistral: render_mistral(turns, out); break;
    case ChatFamily::kPhi3: render_tagged(turns, add_generation_prompt, "<|end|>", true, out); break;
    case ChatFamily::kGemma: render_gemma(turns, add_generation_prompt, out); break;
    case ChatFamily::kZephyr: render_tagged(turns, add_generation_prompt, "</s>", false, out); break;
  }
  return out;
}

}  // namespace cw::server
