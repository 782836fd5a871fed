// reply.cpp: the parsers of the introspection server's answers (reply.hpp).
#include "reply.hpp"

#include <cstdlib>
#include <sstream>

namespace goro_cli {

Fields parse_fields(const std::string& text) {
  Fields f;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto sp = line.find(' ');
    if (sp == std::string::npos) {
      f[line] = "";
    } else {
      f[line.substr(0, sp)] = line.substr(sp + 1);
    }
  }
  return f;
}

long long num(const Fields& f, const std::string& key) {
  const auto it = f.find(key);
  return it == f.end() ? 0 : std::strtoll(it->second.c_str(), nullptr, 10);
}

std::vector<long long> nums(const Fields& f, const std::string& key) {
  std::vector<long long> v;
  const auto it = f.find(key);
  if (it == f.end()) return v;
  std::istringstream in(it->second);
  long long x;
  while (in >> x) v.push_back(x);
  return v;
}

std::vector<GoroutineRow> parse_goroutines(const std::string& text) {
  std::vector<GoroutineRow> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::size_t start = 0;
    for (;;) {
      const auto tab = line.find('\t', start);
      cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    cols.resize(8);
    rows.push_back({cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]});
  }
  return rows;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> cols;
  std::size_t start = 0;
  for (;;) {
    const auto tab = line.find('\t', start);
    cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return cols;
    start = tab + 1;
  }
}

nlohmann::ordered_json frame_json(const std::string& line) {
  std::vector<std::string> c = split_tabs(line.empty() ? line : line.substr(1));
  c.resize(4);
  return {{"function", c[3]},
          {"file", c[2]},
          {"line", std::strtol(c[1].c_str(), nullptr, 10)},
          {"pc", std::strtoull(c[0].c_str(), nullptr, 16)}};
}

// stacks_json renders the "stacks" answer: goroutines as GoroutineInfo
// names its fields, each with its frames as objects.
nlohmann::ordered_json stacks_json(const std::string& text) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '\t') {
      if (!list.empty()) list.back()["stack"].push_back(frame_json(line));
      continue;
    }
    std::vector<std::string> c = split_tabs(line);
    c.resize(11);
    list.push_back({{"id", std::strtoull(c[0].c_str(), nullptr, 10)},
                    {"state", c[1]},
                    {"wait_reason", c[2]},
                    {"waiting_for_ns", std::strtoll(c[3].c_str(), nullptr, 10)},
                    {"created_at", c[4]},
                    {"created_by", c[5]},
                    {"parent_id", std::strtoull(c[6].c_str(), nullptr, 10)},
                    {"name", c[7]},
                    {"submitted_at", c[8]},
                    {"submitted_by", c[9]},
                    {"stack_elided", c[10] == "1"},
                    {"stack", nlohmann::ordered_json::array()}});
  }
  return list;
}

// groups_json renders the "stack groups" answer.
nlohmann::ordered_json groups_json(const std::string& text, long long* total) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  std::istringstream in(text);
  std::string line;
  *total = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '\t') {
      if (!list.empty()) list.back()["stack"].push_back(frame_json(line));
      continue;
    }
    std::vector<std::string> c = split_tabs(line);
    if (c.empty() || c[0] != "G") continue;
    c.resize(6);
    nlohmann::ordered_json ids = nlohmann::ordered_json::array();
    std::istringstream id_list(c[5]);
    for (unsigned long long id; id_list >> id;) ids.push_back(id);
    const long long count = std::strtoll(c[1].c_str(), nullptr, 10);
    *total += count;
    list.push_back({{"count", count},
                    {"wait_reason_or_state", c[2]},
                    {"created_at", c[3]},
                    {"stack_elided", c[4] == "1"},
                    {"ids", ids},
                    {"stack", nlohmann::ordered_json::array()}});
  }
  return list;
}

std::string json_text(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace goro_cli
