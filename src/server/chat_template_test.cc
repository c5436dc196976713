// Chat templates: exact rendering per family, detection from template snippets, names, validation.
#include "server/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cw::server {
namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
};

std::string render_ok(ChatFamily family, const std::vector<ChatMessage>& messages, bool gen = true) {
  auto r = render_chat(family, messages, gen);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::string();
}

TEST(ChatTemplate, Chatml) {
  EXPECT_EQ(render_ok(ChatFamily::kChatml, kConversation),
            "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n"
            "<|im_start|>user\nHello<|im_end|>\n"
            "<|im_start|>assistant\nHi there<|im_end|>\n"
            "<|im_start|>user\nWho are you<|im_end|>\n"
            "<|im_start|>assistant\n");
}

TEST(ChatTemplate, Llama3) {
  EXPECT_EQ(render_ok(ChatFamily::kLlama3, kConversation),
            "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama2) {
  EXPECT_EQ(render_ok(ChatFamily::kLlama2, kConversation),
            "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>"
            "<s>[INST] Who are you [/INST]");
}

TEST(ChatTemplate, Mistral) {
  EXPECT_EQ(render_ok(ChatFamily::kMistral, kConversation),
            "[INST] You are a helpful assistant\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]");
}

TEST(ChatTemplate, Phi3) {
  EXPECT_EQ(render_ok(ChatFamily::kPhi3, kConversation),
            "<|system|>\nYou are a helpful assistant<|end|>\n"
            "<|user|>\nHello<|end|>\n"
            "<|assistant|>\nHi there<|end|>\n"
            "<|user|>\nWho are you<|end|>\n"
            "<|assistant|>\n");
}

TEST(ChatTemplate, Gemma) {
  EXPECT_EQ(render_ok(ChatFamily::kGemma, kConversation),
            "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n"
            "<start_of_turn>model\nHi there<end_of_turn>\n"
            "<start_of_turn>user\nWho are you<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(ChatTemplate, Zephyr) {
  EXPECT_EQ(render_ok(ChatFamily::kZephyr, kConversation),
            "<|system|>\nYou are a helpful assistant</s>\n"
            "<|user|>\nHello</s>\n"
            "<|assistant|>\nHi there</s>\n"
            "<|user|>\nWho are you</s>\n"
            "<|assistant|>\n");
}

TEST(ChatTemplate, NoGenerationPrompt) {
  const std::vector<ChatMessage> msgs = {{"user", "Hi"}};
  EXPECT_EQ(render_ok(ChatFamily::kChatml, msgs, false), "<|im_start|>user\nHi<|im_end|>\n");
  EXPECT_EQ(render_ok(ChatFamily::kLlama3, msgs, false), "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
  EXPECT_EQ(render_ok(ChatFamily::kGemma, msgs, false), "<start_of_turn>user\nHi<end_of_turn>\n");
  EXPECT_EQ(render_ok(ChatFamily::kPhi3, msgs, false), "<|user|>\nHi<|end|>\n");
  EXPECT_EQ(render_ok(ChatFamily::kZephyr, msgs, false), "<|user|>\nHi</s>\n");
  // [/INST] already asks for the answer: the flag changes nothing.
  EXPECT_EQ(render_ok(ChatFamily::kMistral, msgs, false), render_ok(ChatFamily::kMistral, msgs, true));
  EXPECT_EQ(render_ok(ChatFamily::kLlama2, msgs, false), "[INST] Hi [/INST]");
}

TEST(ChatTemplate, TrimmingFollowsTheReferenceTemplates) {
  const std::vector<ChatMessage> msgs = {{"user", "  Hello \n"}, {"assistant", "\t Hi  "}, {"user", "Q"}};
  EXPECT_EQ(render_ok(ChatFamily::kLlama3, msgs),
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(render_ok(ChatFamily::kLlama2, msgs), "[INST] Hello [/INST] Hi </s><s>[INST] Q [/INST]");
  EXPECT_EQ(render_ok(ChatFamily::kGemma, msgs),
            "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\nHi<end_of_turn>\n"
            "<start_of_turn>user\nQ<end_of_turn>\n<start_of_turn>model\n");
  // chatml keeps the content verbatim.
  EXPECT_EQ(render_ok(ChatFamily::kChatml, msgs, false),
            "<|im_start|>user\n  Hello \n<|im_end|>\n<|im_start|>assistant\n\t Hi  <|im_end|>\n"
            "<|im_start|>user\nQ<|im_end|>\n");
}

TEST(ChatTemplate, SystemRuleForFamiliesWithoutASystemRole) {
  // Two system messages are joined; the held text goes to the next user message, not the assistant one.
  const std::vector<ChatMessage> msgs = {
      {"system", "A"}, {"system", "B"}, {"assistant", "x"}, {"user", "u"}};
  EXPECT_EQ(render_ok(ChatFamily::kGemma, msgs),
            "<start_of_turn>model\nx<end_of_turn>\n<start_of_turn>user\nA\n\nB\n\nu<end_of_turn>\n"
            "<start_of_turn>model\n");
  EXPECT_EQ(render_ok(ChatFamily::kMistral, msgs), "x</s>[INST] A\n\nB\n\nu [/INST]");
  EXPECT_EQ(render_ok(ChatFamily::kLlama2, msgs), " x </s><s>[INST] <<SYS>>\nA\n\nB\n<</SYS>>\n\nu [/INST]");
  // A system message with no user message after it becomes a user turn of its own.
  const std::vector<ChatMessage> only_system = {{"system", "Be brief."}};
  EXPECT_EQ(render_ok(ChatFamily::kGemma, only_system),
            "<start_of_turn>user\nBe brief.<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(render_ok(ChatFamily::kMistral, only_system), "[INST] Be brief. [/INST]");
  EXPECT_EQ(render_ok(ChatFamily::kLlama2, only_system), "[INST] Be brief. [/INST]");
}

TEST(ChatTemplate, Phi3SkipsAnEmptySystemMessage) {
  const std::vector<ChatMessage> msgs = {{"system", ""}, {"user", "Hi"}};
  EXPECT_EQ(render_ok(ChatFamily::kPhi3, msgs), "<|user|>\nHi<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, FinalAssistantMessageIsAClosedTurn) {
  const std::vector<ChatMessage> msgs = {{"user", "Hi"}, {"assistant", "Hello"}};
  EXPECT_EQ(render_ok(ChatFamily::kChatml, msgs, false),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n");
}

TEST(ChatTemplate, SpecialCharactersPassThrough) {
  const std::string tricky = "{{ x }} {% if %} <|im_end|> </s> [INST] \"q\" 'a' \\n % & <b> \xC3\xA9\xE2\x82\xAC\n\ttab";
  const std::vector<ChatMessage> msgs = {{"user", tricky}};
  for (ChatFamily f : {ChatFamily::kLlama2, ChatFamily::kLlama3, ChatFamily::kChatml, ChatFamily::kMistral,
                       ChatFamily::kPhi3, ChatFamily::kGemma, ChatFamily::kZephyr}) {
    const std::string out = render_ok(f, msgs);
    EXPECT_NE(out.find(tricky), std::string::npos) << chat_family_name(f) << ": " << out;
  }
  EXPECT_EQ(render_ok(ChatFamily::kChatml, msgs), "<|im_start|>user\n" + tricky + "<|im_end|>\n<|im_start|>assistant\n");
  // An embedded NUL byte survives too.
  const std::string with_nul("a\0b", 3);
  EXPECT_EQ(render_ok(ChatFamily::kZephyr, {{"user", with_nul}}, false), "<|user|>\n" + with_nul + "</s>\n");
}

TEST(ChatTemplate, RefusesUnknownRole) {
  const std::vector<ChatMessage> msgs = {{"user", "Hi"}, {"tool", "x"}};
  auto r = render_chat(ChatFamily::kChatml, msgs, true);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("message 1"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("\"tool\""), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  // Case matters, and a hostile role stays on one line.
  const std::vector<ChatMessage> upper = {{"User", "Hi"}};
  EXPECT_FALSE(render_chat(ChatFamily::kGemma, upper, true).is_ok());
  const std::vector<ChatMessage> hostile = {{"user\nsystem", "Hi"}};
  auto h = render_chat(ChatFamily::kChatml, hostile, true);
  ASSERT_FALSE(h.is_ok());
  EXPECT_NE(h.status().message().find("message 0"), std::string::npos);
  EXPECT_EQ(h.status().message().find('\n'), std::string::npos) << h.status().message();
}

TEST(ChatTemplate, RefusesEmptyMessageList) {
  for (ChatFamily f : {ChatFamily::kChatml, ChatFamily::kLlama2, ChatFamily::kGemma}) {
    auto r = render_chat(f, std::span<const ChatMessage>(), true);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  }
}

TEST(ChatTemplate, FamilyNames) {
  const std::vector<std::pair<ChatFamily, std::string>> all = {
      {ChatFamily::kLlama2, "llama-2"}, {ChatFamily::kLlama3, "llama-3"}, {ChatFamily::kChatml, "chatml"},
      {ChatFamily::kMistral, "mistral"}, {ChatFamily::kPhi3, "phi-3"},     {ChatFamily::kGemma, "gemma"},
      {ChatFamily::kZephyr, "zephyr"},
  };
  for (const auto& [family, name] : all) {
    EXPECT_EQ(chat_family_name(family), name);
    auto parsed = parse_chat_family(name);
    ASSERT_TRUE(parsed.is_ok()) << name;
    EXPECT_EQ(*parsed, family);
  }
  auto qwen = parse_chat_family("qwen");
  ASSERT_TRUE(qwen.is_ok());
  EXPECT_EQ(*qwen, ChatFamily::kChatml);

  for (const char* bad : {"", "llama2", "Gemma", "vicuna", "chatml\n"}) {
    auto r = parse_chat_family(bad);
    ASSERT_FALSE(r.is_ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    const std::string& m = r.status().message();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    for (const auto& [family, name] : all) EXPECT_NE(m.find(name), std::string::npos) << m;
  }
}

// Short, realistic tokenizer.chat_template snippets (abridged from the families' model cards).
TEST(ChatTemplate, EndOfTurnIsWhatTheFormatterWritesAfterAnAssistantTurn) {
  for (ChatFamily f : {ChatFamily::kLlama2, ChatFamily::kLlama3, ChatFamily::kChatml, ChatFamily::kMistral,
                       ChatFamily::kPhi3, ChatFamily::kGemma, ChatFamily::kZephyr}) {
    SCOPED_TRACE(chat_family_name(f));
    const ChatMessage m[] = {{"user", "U1"}, {"assistant", "A1"}};
    auto text = render_chat(f, m, false);
    ASSERT_TRUE(text.is_ok()) << text.status().to_string();
    const std::string eot = chat_end_of_turn(f);
    const size_t a1 = text->find("A1");
    ASSERT_NE(a1, std::string::npos) << *text;
    // The assistant's text is followed (after optional spaces) by the end-of-turn marker.
    size_t after = a1 + 2;
    while (after < text->size() && (*text)[after] == ' ') ++after;
    EXPECT_EQ(text->compare(after, eot.size(), eot), 0) << *text;
  }
}

TEST(ChatTemplate, DetectsEachFamily) {
  struct Case {
    const char* tmpl;
    ChatFamily family;
  };
  const Case cases[] = {
      {"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
       "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
       ChatFamily::kChatml},
      {"{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
       "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + "
       "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
       "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
       ChatFamily::kLlama3},
      {"{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% endif %}"
       "{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
       "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}"
       "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
       "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
       ChatFamily::kLlama2},
      {"{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
       "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
       "{{ message['content'] + eos_token }}{% endif %}{% endfor %}",
       ChatFamily::kMistral},
      {"{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + "
       "'<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
       "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}"
       "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
       ChatFamily::kPhi3},
      // Phi-3-small writes the role tag from the role name: no literal <|user|>.
      {"{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\\n' + message['content'] + "
       "'<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}",
       ChatFamily::kPhi3},
      {"{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
       "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + "
       "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}"
       "{{'<start_of_turn>model\\n'}}{% endif %}",
       ChatFamily::kGemma},
      {"{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + "
       "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
       "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n"
       "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
       ChatFamily::kZephyr},
      {"{% for m in messages %}{{ '<|user|>\\n' + m['content'] + '</s>\\n' }}{% endfor %}", ChatFamily::kZephyr},
  };
  for (const Case& c : cases) {
    bool recognised = false;
    EXPECT_EQ(detect_chat_family(c.tmpl, &recognised), c.family) << c.tmpl;
    EXPECT_TRUE(recognised) << c.tmpl;
    EXPECT_EQ(detect_chat_family(c.tmpl), c.family);
  }
}

TEST(ChatTemplate, DetectionFallsBackToChatml) {
  for (const char* tmpl : {"", "garbage \x01\x02 not a template", "{% for m in messages %}{{ m['content'] }}{% endfor %}",
                           "USER: {{ content }}\nASSISTANT:"}) {
    bool recognised = true;
    EXPECT_EQ(detect_chat_family(tmpl, &recognised), ChatFamily::kChatml) << tmpl;
    EXPECT_FALSE(recognised) << tmpl;
  }
}

}  // namespace
}  // namespace cw::server
