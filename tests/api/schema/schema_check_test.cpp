// Validation causes and paths, unknown and duplicate fields, defaults, pruning and the
// built-in decode error, against small built-in-like schemas and a CRD schema.
#include <QtTest>

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

const char* kDeployment = R"({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "labels": {"app": "web"}},
  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
    "template": {"metadata": {"labels": {"app": "web"}},
      "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27",
        "ports": [{"containerPort": 80}]}]}}}})";

std::string causesText(const SchemaCheck& c) {
  std::string out;
  for (const auto& e : c.errors) out += e.field + ": " + e.message + " (" + e.type + ")\n";
  return out;
}

}  // namespace

class SchemaCheckTest : public QObject {
  Q_OBJECT
 private slots:
  void validDeploymentHasNoFindings() {
    auto reg = fixtures();
    auto dep = reg->find("io.k8s.api.apps.v1.Deployment");
    auto c = checkAgainstSchema(json::parse(kDeployment), *dep);
    QVERIFY2(c.errors.empty(), causesText(c).c_str());
    QVERIFY(c.unknownFields.empty());
  }

  void typeMismatchesRequiredAndEnums() {
    auto reg = fixtures();
    auto dep = reg->find("io.k8s.api.apps.v1.Deployment");
    json obj = json::parse(kDeployment);
    obj["spec"]["replicas"] = "two";
    obj["spec"]["template"]["spec"]["containers"][0].erase("name");
    obj["spec"]["template"]["spec"]["restartPolicy"] = "Sometimes";
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["targetPort"] = true;
    obj["metadata"]["labels"]["tier"] = 5;
    auto c = checkAgainstSchema(obj, *dep);
    const std::string t = causesText(c);
    auto has = [&](const std::string& s) { return t.find(s) != std::string::npos; };
    QVERIFY2(has("spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type "
                 "integer: \"string\" (FieldValueTypeInvalid)"), t.c_str());
    QVERIFY2(has("spec.template.spec.containers[0].name: Required value (FieldValueRequired)"),
             t.c_str());
    QVERIFY2(has("spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported "
                 "values: \"Always\", \"OnFailure\", \"Never\" (FieldValueNotSupported)"), t.c_str());
    QVERIFY2(has("spec.template.spec.containers[0].ports[0].targetPort: Invalid value: \"boolean\": "
                 "spec.template.spec.containers[0].ports[0].targetPort in body must be of type "
                 "integer,string: \"boolean\""), t.c_str());
    QVERIFY2(has("metadata.labels.tier: Invalid value: \"integer\""), t.c_str());
    QCOMPARE(c.errors.size(), size_t(5));
  }

  void nullIsAbsentForBuiltinsButNotForCrds() {
    auto reg = fixtures();
    auto dep = reg->find("io.k8s.api.apps.v1.Deployment");
    json obj = json::parse(kDeployment);
    obj["spec"]["paused"] = nullptr;
    obj["metadata"]["labels"] = nullptr;
    QVERIFY(checkAgainstSchema(obj, *dep).errors.empty());

    auto crd = schemaFromOpenApiV3(json::parse(R"({"type":"object","properties":{"spec":
        {"type":"object","properties":{"size":{"type":"integer"},
         "note":{"type":"string","nullable":true}}}}})"), "spec.versions[0].schema.openAPIV3Schema");
    QVERIFY(crd.ok());
    auto c = checkAgainstSchema(json::parse(R"({"spec":{"size":null,"note":null}})"), **crd);
    QCOMPARE(c.errors.size(), size_t(1));
    QCOMPARE(c.errors[0].field, std::string("spec.size"));
    QCOMPARE(c.errors[0].message,
             std::string("Invalid value: \"null\": spec.size in body must be of type integer: \"null\""));
  }

  void unknownFieldsAreListedWithKubePaths() {
    auto reg = fixtures();
    auto dep = reg->find("io.k8s.api.apps.v1.Deployment");
    json obj = json::parse(kDeployment);
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x";
    obj["spec"]["foo"] = 1;
    auto c = checkAgainstSchema(obj, *dep);
    QCOMPARE(c.unknownFields,
             (std::vector<std::string>{"spec.foo", "spec.template.spec.containers[0].imagee"}));
    QCOMPARE(unknownFieldMessage(c.unknownFields[0]), std::string("unknown field \"spec.foo\""));
  }

  void strictDecodingReportsInDocumentOrder() {
    // kube-apiserver's field validation test body: duplicates and unknowns interleaved in
    // document order; a field both unknown and duplicated is reported once, as unknown.
    const char* body = R"({
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "dupename", "name": "web", "labels": {"app": "nginx"}, "unknownMeta": "x"},
      "spec": {"unknown1": "val1", "unknownDupe": "a", "unknownDupe": "b", "paused": true, "paused": false,
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {"metadata": {"labels": {"app": "nginx"}},
          "spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "unknownNested": "v",
            "args": ["a", "b"], "image": "nginx:1"}]}}}})";
    auto reg = fixtures();
    auto msgs = strictDecodingErrors(body, *reg->find("io.k8s.api.apps.v1.Deployment"));
    QCOMPARE(msgs, (std::vector<std::string>{
                       "duplicate field \"metadata.name\"",
                       "unknown field \"metadata.unknownMeta\"",
                       "unknown field \"spec.unknown1\"",
                       "unknown field \"spec.unknownDupe\"",
                       "duplicate field \"spec.paused\"",
                       "unknown field \"spec.template.spec.containers[0].unknownNested\"",
                       "duplicate field \"spec.template.spec.containers[0].image\"",
                   }));
  }

  void duplicateFieldsWithoutSchema() {
    auto d = findDuplicateFields(R"({"spec": {"replicas": 1, "replicas": 2,
        "ports": [{"hostPort": 1, "hostPort": 2}]}, "a": {"b": 1}, "a": {"b": 2}})");
    QCOMPARE(d, (std::vector<std::string>{"duplicate field \"spec.replicas\"",
                                          "duplicate field \"spec.ports[0].hostPort\"",
                                          "duplicate field \"a\""}));
    QVERIFY(findDuplicateFields(R"({"a": 1, "b": {"a": 2}})").empty());
    QVERIFY(findDuplicateFields("{not json").empty());
  }

  // An update is checked where it differs from the stored object: what changed is found, with
  // its path, and what it left as stored is not walked again (the stored object passed then;
  // here it carries findings of its own so that a walk of it would show).
  void updatesAreCheckedWhereTheyChanged() {
    auto reg = fixtures();
    auto dep = reg->find("io.k8s.api.apps.v1.Deployment");
    json stored = json::parse(kDeployment);
    stored["spec"]["foo"] = 1;
    stored["metadata"]["labels"]["old"] = 7;
    json updated = stored;
    updated["metadata"]["labels"]["tier"] = 5;
    updated["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x";
    updated["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "80";
    auto c = checkAgainstSchema(updated, *dep, &stored);
    const std::string t = causesText(c);
    auto has = [&](const std::string& s) { return t.find(s) != std::string::npos; };
    QVERIFY2(has("metadata.labels.tier: Invalid value: \"integer\""), t.c_str());
    QVERIFY2(has("spec.template.spec.containers[0].ports[0].containerPort: Invalid value: \"string\""), t.c_str());
    QVERIFY2(!has("metadata.labels.old"), t.c_str());
    QCOMPARE(c.unknownFields, std::vector<std::string>{"spec.template.spec.containers[0].imagee"});
    // Without the stored object, everything is walked.
    auto whole = checkAgainstSchema(updated, *dep);
    QVERIFY(causesText(whole).find("metadata.labels.old") != std::string::npos);
    QCOMPARE(whole.unknownFields,
             (std::vector<std::string>{"spec.foo", "spec.template.spec.containers[0].imagee"}));
    // The decoder likewise: a stored mistyped replicas left alone is not its error; the
    // changed port is.
    stored = json::parse(kDeployment);
    stored["spec"]["replicas"] = "3";
    updated = stored;
    QCOMPARE(builtinDecodeError(updated, *dep, "Deployment", "apps/v1", &stored), std::string());
    updated["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "80";
    QCOMPARE(builtinDecodeError(updated, *dep, "Deployment", "apps/v1", &stored),
             std::string("Deployment in version \"apps/v1\" cannot be handled as a Deployment: json: "
                         "cannot unmarshal string into Go struct field "
                         "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"));
  }

  void builtinDecodeErrorNamesTheGoField() {
    auto reg = fixtures();
    auto dep = reg->find("io.k8s.api.apps.v1.Deployment");
    json obj = json::parse(kDeployment);
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = 5;
    QCOMPARE(builtinDecodeError(obj, *dep, "Deployment", "apps/v1"),
             std::string("Deployment in version \"apps/v1\" cannot be handled as a Deployment: json: "
                         "cannot unmarshal number into Go struct field "
                         "Container.spec.template.spec.containers.image of type string"));
    obj = json::parse(kDeployment);
    obj["spec"]["replicas"] = "3";
    QCOMPARE(builtinDecodeError(obj, *dep, "Deployment", "apps/v1"),
             std::string("Deployment in version \"apps/v1\" cannot be handled as a Deployment: json: "
                         "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
                         "of type int32"));
    obj = json::parse(kDeployment);
    obj["spec"]["template"]["spec"]["containers"] = "nginx";
    QVERIFY(builtinDecodeError(obj, *dep, "Deployment", "apps/v1")
                .find("cannot unmarshal string into Go struct field PodSpec.spec.template.spec."
                      "containers of type []v1.Container") != std::string::npos);
    QVERIFY(builtinDecodeError(json::parse(kDeployment), *dep, "Deployment", "apps/v1").empty());
  }

  void defaultsFillAbsentFields() {
    auto reg = fixtures();
    auto dep = reg->find("io.k8s.api.apps.v1.Deployment");
    json obj = json::parse(kDeployment);
    obj["spec"].erase("replicas");
    applySchemaDefaults(obj, *dep);
    QCOMPARE(obj["spec"]["replicas"], json(1));
    QCOMPARE(obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"], json("TCP"));
    // A value that is present is kept.
    obj["spec"]["replicas"] = 5;
    applySchemaDefaults(obj, *dep);
    QCOMPARE(obj["spec"]["replicas"], json(5));
  }

  void pruningRemovesUndeclaredFields() {
    auto reg = fixtures();
    auto dep = reg->find("io.k8s.api.apps.v1.Deployment");
    json obj = json::parse(kDeployment);
    obj["spec"]["foo"] = 1;
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x";
    pruneUnknownFields(obj, *dep);
    QCOMPARE(obj, json::parse(kDeployment));
  }

  // Paths deep in lists and maps, and a map list's duplicate shown by its keys.
  void nestedPathsAndMapListDuplicates() {
    auto crd = schemaFromOpenApiV3(json::parse(R"({"type":"object","properties":{"spec":{
        "type":"object","properties":{"groups":{"type":"array","items":{"type":"object","properties":{
          "ports":{"type":"array","x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["port","protocol"],
            "items":{"type":"object","properties":{"port":{"type":"integer","maximum":65535},"protocol":{"type":"string"}}}},
          "labels":{"type":"object","additionalProperties":{"type":"string","maxLength":3}}}}}}}}})"),
                                   "spec.versions[0].schema.openAPIV3Schema");
    QVERIFY2(crd.ok(), crd.ok() ? "" : crd.status().message().c_str());
    auto c = checkAgainstSchema(json::parse(R"({"spec":{"groups":[{},{"ports":[
        {"port":80,"protocol":"TCP"},{"port":80,"protocol":"UDP"},{"port":80,"protocol":"TCP","x":1},{"port":70000}],
        "labels":{"tier":"frontend"},"extra":true}]}})"), **crd);
    const std::string t = causesText(c);
    auto has = [&](const std::string& s) { return t.find(s) != std::string::npos; };
    QVERIFY2(has("spec.groups[1].ports[2]: Duplicate value: {\"port\":80,\"protocol\":\"TCP\"}"), t.c_str());
    QVERIFY2(!has("ports[1]: Duplicate"), t.c_str());
    QVERIFY2(has("spec.groups[1].ports[3].port: Invalid value: 70000: spec.groups[1].ports[3].port in body should be "
                 "less than or equal to 65535"), t.c_str());
    QVERIFY2(has("spec.groups[1].labels.tier: Too long: may not be longer than 3"), t.c_str());
    QCOMPARE(c.unknownFields, (std::vector<std::string>{"spec.groups[1].extra", "spec.groups[1].ports[2].x"}));
  }

  void crdValueConstraints() {
    auto crd = schemaFromOpenApiV3(json::parse(R"({"type":"object","properties":{"spec":{
        "type":"object","required":["size"],"properties":{
        "size":{"type":"integer","minimum":1,"maximum":10},
        "name":{"type":"string","maxLength":5,"pattern":"^[a-z]+$"},
        "tags":{"type":"array","maxItems":2,"items":{"type":"string"},"x-kubernetes-list-type":"set"},
        "when":{"type":"string","format":"date-time"},
        "extra":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}}})"),
                                   "spec.versions[0].schema.openAPIV3Schema");
    QVERIFY2(crd.ok(), crd.ok() ? "" : crd.status().message().c_str());
    auto c = checkAgainstSchema(json::parse(R"({"apiVersion":"example.com/v1","kind":"Widget",
        "metadata":{"name":"w"},"spec":{"size":0,"name":"Abcdefg","tags":["a","a","b"],
        "when":"yesterday","extra":{"anything":{"goes":1}},"bogus":1}})"), **crd);
    const std::string t = causesText(c);
    auto has = [&](const std::string& s) { return t.find(s) != std::string::npos; };
    QVERIFY2(has("spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"), t.c_str());
    QVERIFY2(has("spec.name: Too long: may not be longer than 5"), t.c_str());
    QVERIFY2(has("spec.name: Invalid value: \"Abcdefg\": spec.name in body should match '^[a-z]+$'"), t.c_str());
    QVERIFY2(has("spec.tags: Too many: 3: must have at most 2 items"), t.c_str());
    QVERIFY2(has("spec.tags[1]: Duplicate value: \"a\""), t.c_str());
    QVERIFY2(has("spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\""), t.c_str());
    QCOMPARE(c.unknownFields, std::vector<std::string>{"spec.bogus"});
    // Missing required field.
    auto c2 = checkAgainstSchema(json::parse(R"({"spec":{}})"), **crd);
    QCOMPARE(c2.errors.size(), size_t(1));
    QCOMPARE(c2.errors[0].field, std::string("spec.size"));
    QCOMPARE(c2.errors[0].message, std::string("Required value"));
    // CRD pruning keeps preserve-unknown subtrees and the implicit object fields.
    json obj = json::parse(R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},
        "spec":{"size":1,"extra":{"x":1},"bogus":1},"status":{"a":1}})");
    pruneUnknownFields(obj, **crd);
    QCOMPARE(obj, json::parse(R"({"apiVersion":"example.com/v1","kind":"Widget",
        "metadata":{"name":"w"},"spec":{"size":1,"extra":{"x":1}}})"));
  }

  void crdDefaultsAndObjectMeta() {
    auto reg = fixtures();
    auto crd = schemaFromOpenApiV3(
        json::parse(R"({"type":"object","properties":{"spec":{"type":"object","properties":{
        "replicas":{"type":"integer","default":3},"mode":{"type":"string","default":"fast"}}}}})"),
        "spec.versions[0].schema.openAPIV3Schema",
        reg->find("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    QVERIFY(crd.ok());
    json obj = json::parse(R"({"metadata":{"name":"w","bogus":1},"spec":{"mode":null}})");
    applySchemaDefaults(obj, **crd);
    QCOMPARE(obj["spec"], json::parse(R"({"replicas":3,"mode":"fast"})"));
    auto c = checkAgainstSchema(obj, **crd);
    QCOMPARE(c.unknownFields, std::vector<std::string>{"metadata.bogus"});
  }

  // The real built-in Deployment schema accepts a typical manifest without findings.
  void builtinDeploymentAcceptsATypicalManifest() {
    auto reg = SchemaRegistry::builtin();
    if (!reg.ok()) QSKIP("built-in schema files do not parse (schema_parse_test lists why)");
    auto dep = (*reg)->find("io.k8s.api.apps.v1.Deployment");
    if (!dep) QSKIP("no built-in Deployment yet");
    const char* text = R"({"apiVersion":"apps/v1","kind":"Deployment",
      "metadata":{"name":"web","namespace":"default","labels":{"app":"web"},
        "creationTimestamp":"2024-05-01T10:00:00Z"},
      "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
        "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":1}},
        "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx",
          "image":"nginx:1.27","ports":[{"containerPort":80,"protocol":"TCP"}],
          "resources":{"limits":{"cpu":"500m","memory":"128Mi"},"requests":{"cpu":0.1}},
          "env":[{"name":"A","value":"b"}]}]}}}})";
    json obj = json::parse(text);
    auto c = checkAgainstSchema(obj, *dep);
    QVERIFY2(c.errors.empty(), causesText(c).c_str());
    QVERIFY2(c.unknownFields.empty(), c.unknownFields.empty() ? "" : c.unknownFields[0].c_str());
    QVERIFY(strictDecodingErrors(text, *dep).empty());
    QVERIFY(builtinDecodeError(obj, *dep, "Deployment", "apps/v1").empty());
  }
};

QTEST_APPLESS_MAIN(SchemaCheckTest)
#include "schema_check_test.moc"
