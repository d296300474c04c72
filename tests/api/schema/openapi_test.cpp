// OpenAPI v2 (JSON and gnostic protobuf) and v3 documents: definitions with
// x-kubernetes-group-version-kind, $refs that resolve, descriptions kubectl explain shows, and
// PATCH operations with the fieldValidation and dryRun parameters kubectl looks for.
#include <QtTest>

#include <functional>
#include <set>

#include "engine/api/resource.h"
#include "engine/api/schema.h"
#include "tests/api/schema/fixture_schemas.h"

using namespace orrery::api;
using json = nlohmann::json;

namespace {

std::shared_ptr<SchemaRegistry> fixtures() {
  auto reg = SchemaRegistry::parse(fixtureSchemaSources());
  if (!reg.ok()) qFatal("fixtures do not parse: %s", reg.status().message().c_str());
  return reg.value();
}

ResourceInfo resource(std::string group, std::string kind, std::string plural,
                      std::string schemaName, std::vector<std::string> subresources) {
  ResourceInfo r;
  r.group = std::move(group);
  r.version = "v1";
  r.kind = std::move(kind);
  r.listKind = r.kind + "List";
  r.resource = std::move(plural);
  r.schemaName = std::move(schemaName);
  r.verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
  r.subresources = std::move(subresources);
  return r;
}

std::shared_ptr<ResourceRegistry> resources() {
  auto r = std::make_shared<ResourceRegistry>();
  r->add(resource("apps", "Deployment", "deployments", "io.k8s.api.apps.v1.Deployment",
                  {"scale", "status"}));
  r->add(resource("", "ConfigMap", "configmaps", "io.k8s.api.core.v1.ConfigMap", {}));
  return r;
}

// Every "$ref" in `doc` names an entry of `defs`.
void checkRefs(const json& doc, const json& defs, const std::string& prefix, int* count) {
  if (doc.is_object()) {
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      if (it.key() == "$ref" && it->is_string()) {
        std::string ref = it->get<std::string>();
        QVERIFY2(ref.rfind(prefix, 0) == 0, ref.c_str());
        QVERIFY2(defs.contains(ref.substr(prefix.size())), ref.c_str());
        ++*count;
      } else {
        checkRefs(it.value(), defs, prefix, count);
      }
    }
  } else if (doc.is_array()) {
    for (const auto& v : doc) checkRefs(v, defs, prefix, count);
  }
}

// A protobuf message as (field number -> values): varints as numbers, bytes as strings.
struct PbField {
  int field;
  int wire;
  uint64_t num = 0;
  std::string bytes;
};
bool parsePb(const std::string& in, std::vector<PbField>* out) {
  size_t i = 0;
  auto varint = [&](uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (i >= in.size()) return false;
      auto b = static_cast<unsigned char>(in[i++]);
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  };
  while (i < in.size()) {
    uint64_t key;
    if (!varint(&key)) return false;
    PbField f{static_cast<int>(key >> 3), static_cast<int>(key & 7)};
    if (f.wire == 0) {
      if (!varint(&f.num)) return false;
    } else if (f.wire == 1) {
      if (i + 8 > in.size()) return false;
      f.bytes = in.substr(i, 8);
      i += 8;
    } else if (f.wire == 2) {
      uint64_t len;
      if (!varint(&len) || i + len > in.size()) return false;
      f.bytes = in.substr(i, len);
      i += len;
    } else {
      return false;
    }
    out->push_back(std::move(f));
  }
  return true;
}
std::vector<std::string> pbAll(const std::string& msg, int field) {
  std::vector<PbField> fs;
  if (!parsePb(msg, &fs)) return {};
  std::vector<std::string> out;
  for (auto& f : fs) {
    if (f.field == field && f.wire == 2) out.push_back(f.bytes);
  }
  return out;
}
std::string pbOne(const std::string& msg, int field) {
  auto all = pbAll(msg, field);
  return all.empty() ? std::string() : all.front();
}

}  // namespace

class OpenApiTest : public QObject {
  Q_OBJECT
 private slots:
  void v2DefinitionsAndPaths() {
    auto reg = fixtures();
    auto res = resources();
    json doc = reg->openApiV2(*res);
    QCOMPARE(doc["swagger"], json("2.0"));
    const json& dep = doc["definitions"]["io.k8s.api.apps.v1.Deployment"];
    QCOMPARE(dep["x-kubernetes-group-version-kind"],
             json::parse(R"([{"group":"apps","kind":"Deployment","version":"v1"}])"));
    QCOMPARE(dep["type"], json("object"));
    QCOMPARE(dep["properties"]["metadata"]["$ref"],
             json("#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    QCOMPARE(dep["properties"]["metadata"]["description"], json("Standard object's metadata."));
    const json& spec = doc["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"];
    QCOMPARE(spec["properties"]["replicas"]["type"], json("integer"));
    QCOMPARE(spec["properties"]["replicas"]["format"], json("int32"));
    QCOMPARE(spec["properties"]["replicas"]["description"],
             json("Number of desired pods. Defaults to 1."));
    QCOMPARE(spec["required"], json::parse(R"(["selector","template"])"));
    const json& podSpec = doc["definitions"]["io.k8s.api.core.v1.PodSpec"];
    QCOMPARE(podSpec["properties"]["containers"]["x-kubernetes-patch-merge-key"], json("name"));
    QCOMPARE(podSpec["properties"]["containers"]["x-kubernetes-patch-strategy"], json("merge"));
    QCOMPARE(podSpec["properties"]["containers"]["items"]["$ref"],
             json("#/definitions/io.k8s.api.core.v1.Container"));
    QCOMPARE(doc["definitions"]["io.k8s.api.core.v1.Quantity"]["type"], json("string"));
    int refs = 0;
    checkRefs(doc, doc["definitions"], "#/definitions/", &refs);
    QVERIFY(refs > 10);

    const json& item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    QVERIFY(item.contains("get") && item.contains("put") && item.contains("patch") &&
            item.contains("delete"));
    const json& patch = item["patch"];
    QCOMPARE(patch["x-kubernetes-action"], json("patch"));
    QCOMPARE(patch["x-kubernetes-group-version-kind"],
             json::parse(R"({"group":"apps","kind":"Deployment","version":"v1"})"));
    std::set<std::string> params;
    for (const auto& p : patch["parameters"]) params.insert(p["name"].get<std::string>());
    QVERIFY(params.count("fieldValidation") && params.count("dryRun") && params.count("force"));
    QVERIFY(doc["paths"].contains("/api/v1/namespaces/{namespace}/configmaps"));
    QVERIFY(doc["paths"].contains("/api/v1/configmaps"));
    QVERIFY(doc["paths"].contains("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"));
    QCOMPARE(doc["paths"]["/api/v1/namespaces/{namespace}/configmaps"]["get"]["operationId"],
             json("listCoreV1NamespacedConfigMap"));
  }

  void v2Protobuf() {
    auto reg = fixtures();
    auto res = resources();
    std::string pb = reg->openApiV2Protobuf(*res);
    std::vector<PbField> top;
    QVERIFY(parsePb(pb, &top));
    QCOMPARE(pbOne(pb, 1), std::string("2.0"));
    // definitions (9) -> additional_properties (1) NamedSchema{name 1, value 2}.
    std::string deployment;
    for (const auto& named : pbAll(pbOne(pb, 9), 1)) {
      if (pbOne(named, 1) == "io.k8s.api.apps.v1.Deployment") deployment = pbOne(named, 2);
    }
    QVERIFY(!deployment.empty());
    QCOMPARE(pbOne(deployment, 4),
             std::string("Deployment enables declarative updates for Pods and ReplicaSets."));
    QCOMPARE(pbOne(pbOne(deployment, 22), 1), std::string("object"));  // TypeItem
    bool gvk = false;
    for (const auto& ext : pbAll(deployment, 31)) {
      if (pbOne(ext, 1) == "x-kubernetes-group-version-kind") {
        json v = json::parse(pbOne(pbOne(ext, 2), 2));  // Any.yaml (JSON is YAML)
        gvk = v == json::parse(R"([{"group":"apps","kind":"Deployment","version":"v1"}])");
      }
    }
    QVERIFY(gvk);
    // paths (8) -> path (2) NamedPathItem; PATCH (8) operation parameters (8) carry
    // fieldValidation as a query parameter, which is what kubectl's verifier reads.
    bool found = false;
    for (const auto& named : pbAll(pbOne(pb, 8), 2)) {
      if (pbOne(named, 1) != "/apis/apps/v1/namespaces/{namespace}/deployments/{name}") continue;
      std::string patch = pbOne(pbOne(named, 2), 8);
      for (const auto& item : pbAll(patch, 8)) {
        std::string query = pbOne(pbOne(pbOne(item, 1), 2), 3);
        if (pbOne(query, 4) == "fieldValidation") found = pbOne(query, 2) == "query";
      }
    }
    QVERIFY(found);
  }

  void v3DocumentForOneGroupVersion() {
    auto reg = fixtures();
    auto res = resources();
    json doc = reg->openApiV3("apps/v1", *res);
    QCOMPARE(doc["openapi"], json("3.0.0"));
    const json& schemas = doc["components"]["schemas"];
    QVERIFY(schemas.contains("io.k8s.api.apps.v1.Deployment"));
    QVERIFY(schemas.contains("io.k8s.api.apps.v1.DeploymentList"));
    QVERIFY(schemas.contains("io.k8s.api.core.v1.Container"));  // reachable from Deployment
    QVERIFY(schemas.contains("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    QVERIFY(!schemas.contains("io.k8s.api.core.v1.ConfigMap"));  // another group-version
    const json& meta = schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["metadata"];
    QCOMPARE(meta["allOf"][0]["$ref"],
             json("#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    QCOMPARE(meta["description"], json("Standard object's metadata."));
    // What `kubectl explain deployment.spec.replicas` reads.
    const json& spec = schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
    std::string specRef = spec["allOf"][0]["$ref"];
    const json& specDef = schemas[specRef.substr(std::string("#/components/schemas/").size())];
    QCOMPARE(specDef["properties"]["replicas"]["description"],
             json("Number of desired pods. Defaults to 1."));
    int refs = 0;
    checkRefs(doc, schemas, "#/components/schemas/", &refs);
    QVERIFY(refs > 10);
    // PATCH carries x-kubernetes-group-version-kind and the fieldValidation/dryRun params.
    const json& patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    QCOMPARE(patch["x-kubernetes-group-version-kind"]["kind"], json("Deployment"));
    std::set<std::string> params;
    for (const auto& p : patch["parameters"]) params.insert(p["name"].get<std::string>());
    QVERIFY(params.count("fieldValidation") && params.count("dryRun"));
    QVERIFY(patch["requestBody"]["content"].contains("application/apply-patch+yaml"));
    QVERIFY(doc["paths"].contains("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"));
  }

  void v3IndexListsGroupVersions() {
    auto reg = fixtures();
    auto res = resources();
    json idx = reg->openApiV3Index(*res);
    QVERIFY(idx["paths"].contains("api/v1"));
    QVERIFY(idx["paths"].contains("apis/apps/v1"));
    std::string url = idx["paths"]["apis/apps/v1"]["serverRelativeURL"];
    QVERIFY2(url.rfind("/openapi/v3/apis/apps/v1?hash=", 0) == 0, url.c_str());
    // Same content, same hash; given hashes are used as they are.
    QCOMPARE(reg->openApiV3Index(*res)["paths"]["apis/apps/v1"]["serverRelativeURL"], json(url));
    json given = reg->openApiV3Index(*res, {{"apps/v1", "ABC"}});
    QCOMPARE(given["paths"]["apis/apps/v1"]["serverRelativeURL"],
             json("/openapi/v3/apis/apps/v1?hash=ABC"));
  }

  void crdSchemasGetTheirGvkFromTheResource() {
    auto reg = fixtures();
    auto res = resources();
    auto crd = schemaFromOpenApiV3(
        json::parse(R"({"type":"object","properties":{"spec":{"type":"object","description":"Spec.",
        "properties":{"size":{"type":"integer"}}}}})"),
        "spec.versions[0].schema.openAPIV3Schema");
    QVERIFY(crd.ok());
    reg->add("com.example.v1.Widget", *crd);
    res->add(resource("example.com", "Widget", "widgets", "com.example.v1.Widget", {"status"}));
    json doc = reg->openApiV3("example.com/v1", *res);
    const json& w = doc["components"]["schemas"]["com.example.v1.Widget"];
    QCOMPARE(w["x-kubernetes-group-version-kind"],
             json::parse(R"([{"group":"example.com","kind":"Widget","version":"v1"}])"));
    QCOMPARE(w["properties"]["spec"]["properties"]["size"]["type"], json("integer"));
    QVERIFY(doc["paths"].contains("/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"));
  }

  void builtinSchemasProduceResolvableDocuments() {
    auto reg = SchemaRegistry::builtin();
    if (!reg.ok()) QSKIP("built-in schema files do not parse (schema_parse_test lists why)");
    auto res = ResourceRegistry::builtin();
    json v2 = (*reg)->openApiV2(*res);
    int refs = 0;
    checkRefs(v2, v2["definitions"], "#/definitions/", &refs);
    for (const auto& gv : res->groupVersions()) {
      json v3 = (*reg)->openApiV3(gv, *res);
      checkRefs(v3, v3["components"]["schemas"], "#/components/schemas/", &refs);
    }
    std::vector<PbField> fs;
    QVERIFY(parsePb((*reg)->openApiV2Protobuf(*res), &fs));
    // `kubectl explain deployment.spec.replicas` (v3): Deployment -> spec -> replicas.
    json apps = (*reg)->openApiV3("apps/v1", *res);
    const json& schemas = apps["components"]["schemas"];
    const json& dep = schemas["io.k8s.api.apps.v1.Deployment"];
    QCOMPARE(dep["x-kubernetes-group-version-kind"][0]["kind"], json("Deployment"));
    std::string specRef = dep["properties"]["spec"]["allOf"][0]["$ref"];
    const json& spec = schemas[specRef.substr(std::string("#/components/schemas/").size())];
    QVERIFY(!spec["properties"]["replicas"].value("description", "").empty());
  }
};

QTEST_APPLESS_MAIN(OpenApiTest)
#include "openapi_test.moc"
