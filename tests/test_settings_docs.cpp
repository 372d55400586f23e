// The key tables in docs/*.md are the settings declarations' markdown_table(), kept between
//   <!-- settings:NAME -->
//   <!-- /settings:NAME -->
// This test fails when a table differs from its declaration. After changing a declaration,
// regenerate the tables in place with
//   FIELDFLOW_UPDATE_DOCS=1 build/tests/test_settings_docs
// and commit the docs. A new settings section registers its table below with one line; put the two
// marker lines where its table belongs in the docs and run the command above.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "fieldflow/core/settings.hpp"
#include "fieldflow/flow/config.hpp"
#include "fieldflow/recon/denoise.hpp"
#include "fieldflow/report/report.hpp"
#include "fieldflow/sim/cosmology.hpp"
#include "fieldflow/sim/simulation_set.hpp"
#include "fieldflow/train/calibrate.hpp"
#include "fieldflow/train/settings.hpp"

namespace {

struct DocTable {
  std::string doc;   // relative to the source folder
  std::string name;  // the markers' NAME
  std::function<std::string()> markdown;
};

const std::vector<DocTable>& doc_tables() {
  static const std::vector<DocTable> tables = {
      {"docs/simulate.md", "simulation",
       [] { return ff::simulation_settings_table().markdown_table(); }},
      {"docs/flow.md", "flow", [] { return ff::flow_settings_table().markdown_table(); }},
      {"docs/flow.md", "sample", [] { return ff::sample_settings_table().markdown_table(); }},
      {"docs/train.md", "data", [] { return ff::data_settings_table().markdown_table(); }},
      {"docs/train.md", "train", [] { return ff::train_settings_table().markdown_table(); }},
      {"docs/train.md", "calibrate",
       [] { return ff::calibrate_settings_table().markdown_table(); }},
      {"docs/denoise.md", "denoise", [] { return ff::denoise_settings_table().markdown_table(); }},
      {"docs/posterior.md", "posterior",
       [] { return ff::posterior_settings_table().markdown_table(); }},
      {"docs/report.md", "report",
       [] { return ff::report::report_settings_table().markdown_table(); }},
  };
  return tables;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// [begin, end) of the text between the markers of name, or npos when they are missing.
std::pair<size_t, size_t> block(const std::string& text, const std::string& name) {
  const std::string open = "<!-- settings:" + name + " -->\n";
  const std::string close = "<!-- /settings:" + name + " -->";
  const size_t a = text.find(open);
  if (a == std::string::npos) return {std::string::npos, std::string::npos};
  const size_t begin = a + open.size();
  const size_t end = text.find(close, begin);
  if (end == std::string::npos) return {std::string::npos, std::string::npos};
  return {begin, end};
}

}  // namespace

TEST(SettingsDocs, TablesMatchTheDeclarations) {
  const bool update = std::getenv("FIELDFLOW_UPDATE_DOCS") != nullptr;
  for (const DocTable& t : doc_tables()) {
    const std::string path = std::string(FIELDFLOW_SOURCE_DIR) + "/" + t.doc;
    std::string text = read_text(path);
    const auto [begin, end] = block(text, t.name);
    ASSERT_NE(begin, std::string::npos) << t.doc << " lacks the lines <!-- settings:" << t.name
                                        << " --> and <!-- /settings:" << t.name << " -->";
    const std::string want = t.markdown();
    if (text.substr(begin, end - begin) == want) continue;
    if (update) {
      text.replace(begin, end - begin, want);
      std::ofstream(path) << text;
      std::printf("updated the %s table of %s\n", t.name.c_str(), t.doc.c_str());
      continue;
    }
    ADD_FAILURE() << "the " << t.name << " table of " << t.doc
                  << " differs from its declaration; regenerate it with "
                     "FIELDFLOW_UPDATE_DOCS=1 build/tests/test_settings_docs\nexpected:\n"
                  << want;
  }
}

// Struct initialisers are the defaults of settings made in code: they must equal the declared ones.
TEST(SettingsDocs, StructDefaultsEqualDeclaredDefaults) {
  auto same = [](const auto& table, const auto& from_struct) {
    const auto d = table.first_difference(table.defaults(), from_struct);
    EXPECT_FALSE(d) << table.name() << ": " << d->key << " is " << d->stored << " declared, "
                    << d->requested << " in the struct";
  };
  same(ff::simulation_settings_table(), ff::SimulationSettings{});
  same(ff::cosmology_table(), ff::CosmologyParams{});
  same(ff::flow_settings_table(), ff::FlowSettings{});
  same(ff::denoise_settings_table(), ff::DenoiseSettings{});
  same(ff::posterior_settings_table(), ff::PosteriorSettings{});
}
