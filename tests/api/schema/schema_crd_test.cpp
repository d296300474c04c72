// CRD openAPIV3Schema parsing: structural schemas accepted with every keyword we model,
// non-structural ones refused with kube's causes and field paths.
#include <QtTest>

#include "engine/api/schema.h"

using namespace orrery::api;
using json = nlohmann::json;

namespace {
const std::string kPath = "spec.versions[0].schema.openAPIV3Schema";

std::string causes(const Status& s) {
  std::string out;
  for (const auto& c : s.causes) out += c.field + ": " + c.message + "\n";
  return out;
}
}  // namespace

class SchemaCrdTest : public QObject {
  Q_OBJECT
 private slots:
  void structuralSchemaParses() {
    auto r = schemaFromOpenApiV3(json::parse(R"({
      "type": "object", "description": "A widget.",
      "properties": {
        "spec": {"type": "object", "required": ["size"], "properties": {
          "size": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 9, "default": 2},
          "color": {"type": "string", "enum": ["red", "blue"], "pattern": "^[a-z]+$", "maxLength": 8},
          "port": {"x-kubernetes-int-or-string": true},
          "labels": {"type": "object", "additionalProperties": {"type": "string"},
                     "x-kubernetes-map-type": "atomic"},
          "items": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"],
                              "properties": {"name": {"type": "string"}}}},
          "raw": {"x-kubernetes-preserve-unknown-fields": true},
          "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                       "x-kubernetes-preserve-unknown-fields": true},
          "note": {"type": "string", "nullable": true}}},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}})"),
                                 kPath);
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
    const Schema& root = **r;
    QCOMPARE(root.type, Schema::Type::kObject);
    QVERIFY(root.child("apiVersion") && root.child("kind") && root.child("metadata"));
    const Schema* spec = root.child("spec");
    QCOMPARE(spec->required, std::vector<std::string>{"size"});
    const Schema* size = spec->child("size");
    QCOMPARE(size->type, Schema::Type::kInteger);
    QCOMPARE(size->minimum.value(), 1.0);
    QCOMPARE(size->maximum.value(), 9.0);
    QCOMPARE(size->defaultValue.value(), json(2));
    QCOMPARE(spec->child("color")->enumValues, (std::vector<std::string>{"red", "blue"}));
    QCOMPARE(spec->child("color")->maxLength.value(), int64_t(8));
    QCOMPARE(spec->child("port")->type, Schema::Type::kIntOrString);
    QCOMPARE(spec->child("labels")->type, Schema::Type::kMap);
    QCOMPARE(spec->child("labels")->items->type, Schema::Type::kString);
    QCOMPARE(spec->child("labels")->mapType, std::string("atomic"));
    QCOMPARE(spec->child("items")->listType, std::string("map"));
    QCOMPARE(spec->child("items")->listMapKeys, std::vector<std::string>{"name"});
    QCOMPARE(spec->child("raw")->type, Schema::Type::kAny);
    QVERIFY(spec->child("template")->embeddedResource);
    QVERIFY(spec->child("template")->child("metadata"));
    QVERIFY(spec->child("note")->nullable);
    QCOMPARE(root.description, std::string("A widget."));
  }

  void missingTypeIsNotStructural() {
    auto r = schemaFromOpenApiV3(
        json::parse(R"({"type":"object","properties":{"spec":{"properties":{"a":{"type":"string"}}}}})"),
        kPath);
    QVERIFY(!r.ok());
    QCOMPARE(r.status().code(), 422);
    QCOMPARE(r.status().causes.size(), size_t(1));
    QCOMPARE(r.status().causes[0].field,
             std::string("spec.versions[0].schema.openAPIV3Schema.properties[spec].type"));
    QCOMPARE(r.status().causes[0].message,
             std::string("Required value: must not be empty for specified object fields"));
    QCOMPARE(r.status().causes[0].type, std::string("FieldValueRequired"));
  }

  void everyProblemIsListed() {
    auto r = schemaFromOpenApiV3(json::parse(R"({
      "type": "string",
      "additionalProperties": {"type": "string"},
      "properties": {
        "list": {"type": "array"},
        "elems": {"type": "array", "items": {"properties": {}}},
        "both": {"type": "object", "properties": {"a": {"type": "string"}},
                 "additionalProperties": {"type": "string"}},
        "ios": {"x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true},
        "emb": {"x-kubernetes-embedded-resource": true},
        "m": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "map"},
        "u": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
        "any": {"type": "object", "anyOf": [{"type": "string"}]},
        "weird": {"type": "stringy"},
        "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}})"),
                                 kPath);
    QVERIFY(!r.ok());
    const std::string t = causes(r.status());
    auto has = [&](const std::string& s) {
      bool ok = t.find(kPath + s) != std::string::npos;
      if (!ok) qWarning("missing %s", s.c_str());
      return ok;
    };
    QVERIFY2(has(".type: Invalid value: \"string\": must be object at the root"), t.c_str());
    QVERIFY2(has(".additionalProperties: Forbidden: must not be used at the root"), t.c_str());
    QVERIFY2(has(".properties[list].items: Required value: must be specified"), t.c_str());
    QVERIFY2(has(".properties[elems].items.type: Required value: must not be empty for specified array items"), t.c_str());
    QVERIFY2(has(".properties[both].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"), t.c_str());
    QVERIFY2(has(".properties[ios].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true"), t.c_str());
    QVERIFY2(has(".properties[emb].type: Required value: must be object if x-kubernetes-embedded-resource is true"), t.c_str());
    QVERIFY2(has(".properties[m].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"), t.c_str());
    QVERIFY2(has(".properties[u].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"), t.c_str());
    QVERIFY2(has(".properties[any].anyOf[0].type: Forbidden: must be empty to be structural"), t.c_str());
    QVERIFY2(has(".properties[weird].type: Unsupported value: \"stringy\""), t.c_str());
    QVERIFY2(has(".properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"), t.c_str());
    // Sorted like kube sorts them, and the message joins them.
    for (size_t i = 1; i < r.status().causes.size(); ++i) {
      const auto& a = r.status().causes[i - 1];
      const auto& b = r.status().causes[i];
      QVERIFY(a.field + ": " + a.message <= b.field + ": " + b.message);
    }
    QVERIFY(r.status().message().front() == '[');
  }

  void intOrStringAnyOfPatternIsStructural() {
    auto r = schemaFromOpenApiV3(json::parse(R"({"type":"object","properties":{"port":{
        "x-kubernetes-int-or-string": true,
        "anyOf": [{"type": "integer"}, {"type": "string"}]}}})"), kPath);
    QVERIFY2(r.ok(), r.ok() ? "" : r.status().message().c_str());
    QCOMPARE((*r)->child("port")->type, Schema::Type::kIntOrString);
    auto c = checkAgainstSchema(json::parse(R"({"port": 1.5})"), **r);
    QCOMPARE(c.errors.size(), size_t(1));
  }
};

QTEST_APPLESS_MAIN(SchemaCrdTest)
#include "schema_crd_test.moc"
