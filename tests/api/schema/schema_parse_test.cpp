// Loads every compiled-in engine/api/types/*.schema file and fails listing every problem
// (file:line: what is wrong). The type writers run this after each edit.
#include <QtTest>

#include <iostream>

#include "engine/api/resource.h"
#include "engine/api/schema.h"

using namespace orrery::api;

namespace orrery::api {
const std::vector<std::pair<std::string_view, std::string_view>>& builtinSchemaSources();
}

class SchemaParseTest : public QObject {
  Q_OBJECT
 private slots:
  void builtinFilesParse() {
    std::cout << "schema files:";
    for (const auto& [file, text] : builtinSchemaSources()) std::cout << " " << file;
    std::cout << "\n";
    auto reg = SchemaRegistry::builtin();
    if (!reg.ok()) {
      std::cout << reg.status().message() << "\n";
      QFAIL(qPrintable(QString::fromStdString(std::to_string(reg.status().causes.size()) +
                                              " problem(s) in the schema files, listed above")));
    }
    std::cout << reg.value()->names().size() << " named types\n";
  }

  // Every served built-in resource names a schema the files declare, carrying its GVK and
  // the fields every object has.
  void everyResourceHasItsSchema() {
    auto reg = SchemaRegistry::builtin();
    if (!reg.ok()) QSKIP("the files do not parse (see builtinFilesParse)");
    std::vector<std::string> problems;
    for (const auto& r : ResourceRegistry::builtin()->all()) {
      if (r.schemaName.empty()) continue;
      auto s = reg.value()->find(r.schemaName);
      if (!s) {
        problems.push_back(r.qualifiedResource() + " (" + r.apiVersion() + "): no type " +
                           r.schemaName);
        continue;
      }
      for (const char* f : {"apiVersion", "kind", "metadata"}) {
        if (!s->properties.count(f)) problems.push_back(r.schemaName + ": no field " + f);
      }
      bool gvk = false;
      for (const auto& g : s->gvks) {
        gvk = gvk || (g.group == r.group && g.version == r.version && g.kind == r.kind);
      }
      if (!gvk) {
        problems.push_back(r.schemaName + ": missing gvk=" +
                           (r.group.empty() ? "" : r.group + "/") + r.version + "/" + r.kind);
      }
    }
    for (const auto& p : problems) std::cout << p << "\n";
    QVERIFY2(problems.empty(), "resources without a schema, listed above");
  }
};

QTEST_APPLESS_MAIN(SchemaParseTest)
#include "schema_parse_test.moc"
