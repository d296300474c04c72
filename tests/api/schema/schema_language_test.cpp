// The schema language parser: cross-file names, aliases, recursion, attributes, and errors
// that name file:line for every problem.
#include <QtTest>

#include "engine/api/schema.h"

using namespace orrery::api;

namespace {

const char* kMeta = R"(# meta types
package io.k8s.apimachinery.pkg.apis.meta.v1
type ObjectMeta -- Standard object metadata.
  name string -- Name must be unique within a namespace.
  labels map[string]string -- Map of string keys and values.
  creationTimestamp Time -- When it was created.
scalar Time string format=date-time -- Time is a wrapper around time.Time.
)";

const char* kApps = R"(package io.k8s.api.apps.v1
alias meta = io.k8s.apimachinery.pkg.apis.meta.v1   # short name

type Deployment gvk=apps/v1/Deployment -- Deployment enables declarative updates.
  apiVersion string -- APIVersion of the object.
  kind string -- Kind of the object.
  metadata meta.ObjectMeta -- Standard object's metadata.
  spec DeploymentSpec -- Specification of the desired behavior.

type DeploymentSpec -- DeploymentSpec is the specification of a deployment.
  replicas integer format=int32 default=1 -- Number of desired pods.
  containers []io.k8s.api.core.v1.Container required patch=merge key=name list=map keys=name -- Containers.
  strategy string enum=Recreate,RollingUpdate -- The strategy.
  selector map[string]string mapType=atomic
)";

const char* kCore = R"(package io.k8s.api.core.v1
type Container -- A container.
  name string required -- Name of the container.
  image string -- Image name.
  limit quantity -- A quantity.
  port int-or-string -- A port.
type Props -- Recursive, like JSONSchemaProps.
  properties map[string]Props -- Nested.
  items Props -- Item schema.
  raw object -- Free-form object.
  value any -- Anything.
)";

}  // namespace

class SchemaLanguageTest : public QObject {
  Q_OBJECT
 private slots:
  void parsesAcrossFilesWithAliases() {
    auto reg = SchemaRegistry::parse({{"apps_v1.schema", kApps}, {"core_v1.schema", kCore},
                                      {"meta_v1.schema", kMeta}});
    QVERIFY2(reg.ok(), reg.ok() ? "" : reg.status().message().c_str());
    auto dep = (*reg)->find("io.k8s.api.apps.v1.Deployment");
    QVERIFY(dep);
    QCOMPARE(dep->gvks.size(), size_t(1));
    QCOMPARE(dep->gvks[0].group, std::string("apps"));
    QCOMPARE(dep->gvks[0].kind, std::string("Deployment"));
    QCOMPARE(dep->description, std::string("Deployment enables declarative updates."));
    const Schema* meta = dep->child("metadata");
    QVERIFY(meta);
    QCOMPARE(meta->refName, std::string("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    QVERIFY(!meta->isDefinition);
    QCOMPARE(meta->description, std::string("Standard object's metadata."));
    QCOMPARE(meta->child("labels")->type, Schema::Type::kMap);
    QCOMPARE(meta->child("creationTimestamp")->format, std::string("date-time"));
    QCOMPARE(meta->child("creationTimestamp")->type, Schema::Type::kString);

    const Schema* spec = dep->child("spec");
    const Schema* replicas = spec->child("replicas");
    QCOMPARE(replicas->type, Schema::Type::kInteger);
    QCOMPARE(replicas->format, std::string("int32"));
    QCOMPARE(replicas->defaultValue.value(), nlohmann::json(1));
    const Schema* containers = spec->child("containers");
    QCOMPARE(containers->type, Schema::Type::kArray);
    QCOMPARE(containers->patchStrategy, std::string("merge"));
    QCOMPARE(containers->patchMergeKey, std::string("name"));
    QCOMPARE(containers->listType, std::string("map"));
    QCOMPARE(containers->listMapKeys, std::vector<std::string>{"name"});
    QCOMPARE(containers->items->refName, std::string("io.k8s.api.core.v1.Container"));
    QCOMPARE(containers->items->child("limit")->format, std::string("quantity"));
    QCOMPARE(containers->items->child("port")->type, Schema::Type::kIntOrString);
    QCOMPARE(spec->required, std::vector<std::string>{"containers"});
    QCOMPARE(spec->child("strategy")->enumValues,
             (std::vector<std::string>{"Recreate", "RollingUpdate"}));
    QCOMPARE(spec->child("selector")->mapType, std::string("atomic"));
  }

  void recursiveTypesShareNodes() {
    auto reg = SchemaRegistry::parse({{"core_v1.schema", kCore}});
    QVERIFY(reg.ok());
    auto props = (*reg)->find("io.k8s.api.core.v1.Props");
    const Schema* nested = props->child("properties");
    QCOMPARE(nested->type, Schema::Type::kMap);
    QCOMPARE(nested->items.get(), props.get());  // map values are the named node itself
    // A field of the named type sees its properties, however deep.
    const Schema* deep = props->child("items")->child("items")->child("items");
    QVERIFY(deep && deep->child("raw"));
    QVERIFY(deep->child("raw")->preserveUnknownFields);
    QCOMPARE(deep->child("value")->type, Schema::Type::kAny);
  }

  void everyProblemNamesFileAndLine() {
    const char* bad = R"(package io.k8s.api.core.v1
type Pod gvk=v1/Pod -- A pod.
  spec PodSpek -- typo in the type name
   status string -- three spaces
  phase string colour=red -- unknown attribute
  phase2 string list=map keys=name -- list on a string
type PodSpec
  containers []Container patch=merge key=nmae -- merge key is not a field
	tabbed string
  volumes []meta.Volume
type Container
  name string
  name integer
  x string default={bad
type Pod
)";
    auto reg = SchemaRegistry::parse({{"bad.schema", bad}});
    QVERIFY(!reg.ok());
    const std::string& m = reg.status().message();
    auto has = [&](const std::string& s) {
      if (m.find(s) == std::string::npos) {
        qWarning("missing %s in:\n%s", s.c_str(), m.c_str());
        return false;
      }
      return true;
    };
    QVERIFY(has("bad.schema:3: unknown type \"PodSpek\""));
    QVERIFY(has("bad.schema:4: bad indentation"));
    QVERIFY(has("bad.schema:5: bad attribute \"colour\""));
    QVERIFY(has("bad.schema:6: \"io.k8s.api.core.v1.Pod.phase2\": list= is only for array fields"));
    QVERIFY(has("bad.schema:8: \"io.k8s.api.core.v1.PodSpec.containers\": merge key \"nmae\" is not a field of io.k8s.api.core.v1.Container"));
    QVERIFY(has("bad.schema:9: bad indentation: tab"));
    QVERIFY(has("bad.schema:10: unknown type \"meta.Volume\""));
    QVERIFY(has("\"meta\" is not an alias"));
    QVERIFY(has("bad.schema:13: field \"name\" is already declared at bad.schema:12"));
    QVERIFY(has("bad.schema:14: bad attribute default={bad"));
    QVERIFY(has("bad.schema:15: type \"io.k8s.api.core.v1.Pod\" is already declared at bad.schema:2"));
    QCOMPARE(reg.status().causes.size(), size_t(10));
    QCOMPARE(reg.status().causes[0].field, std::string("bad.schema:3"));
  }

  void structuralLineErrors() {
    auto reg = SchemaRegistry::parse({{"x.schema", "type Early\npackage a.b\nwidget Foo\n"
                                                   "type T gvk=apps/Deployment/x/y\n"
                                                   "  f string\n"}});
    QVERIFY(!reg.ok());
    const std::string& m = reg.status().message();
    QVERIFY2(m.find("x.schema:1: type \"Early\" declared before any `package` line") !=
                 std::string::npos, m.c_str());
    QVERIFY2(m.find("x.schema:3: unknown declaration \"widget\"") != std::string::npos, m.c_str());
    QVERIFY2(m.find("x.schema:4: bad attribute gvk=") != std::string::npos, m.c_str());
  }

  void builtinRegistriesAreIndependent() {
    auto a = SchemaRegistry::builtin();
    auto b = SchemaRegistry::builtin();
    if (!a.ok()) QSKIP("built-in schema files do not parse (schema_parse_test lists why)");
    auto s = std::make_shared<Schema>();
    (*a)->add("com.example.v1.Widget", s);
    QVERIFY((*a)->find("com.example.v1.Widget"));
    QVERIFY(!(*b)->find("com.example.v1.Widget"));
  }
};

QTEST_APPLESS_MAIN(SchemaLanguageTest)
#include "schema_language_test.moc"
