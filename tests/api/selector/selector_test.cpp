// Label and field selectors: parsing, errors and matching as kube-apiserver does them
// (labels.Parse, metav1.LabelSelectorAsSelector, fields.ParseSelector + field label conversion).
#include <QtTest>

#include "engine/api/selector.h"

using namespace orrery::api;
using json = nlohmann::json;

namespace {

std::string parseError(const std::string& text) {
  auto r = LabelSelector::parse(text);
  if (r.ok()) return "<ok>";
  return std::to_string(r.status().code()) + " " + r.status().reason() + ": " + r.status().message();
}

std::string fieldError(const std::string& text, const std::string& group, const std::string& kind) {
  auto r = FieldSelector::parse(text, group, kind);
  if (r.ok()) return "<ok>";
  return std::to_string(r.status().code()) + " " + r.status().reason() + ": " + r.status().message();
}

bool labelsMatch(const std::string& selector, const json& labels) {
  auto r = LabelSelector::parse(selector);
  if (!r.ok()) qFatal("selector %s: %s", selector.c_str(), r.status().message().c_str());
  return r->matches(labels);
}

}  // namespace

class SelectorTest : public QObject {
  Q_OBJECT

 private slots:
  void parsesEveryOperatorAndPrintsSortedByKey() {
    auto r = LabelSelector::parse("z, a=b ,c!=d,e in (y,x),f notin (z),!h, k==v,n>5,m<3");
    QVERIFY(r.ok());
    QCOMPARE(r->toString(), std::string("a=b,c!=d,e in (x,y),f notin (z),!h,k==v,m<3,n>5,z"));
    using Op = LabelSelector::Requirement::Op;
    QCOMPARE(static_cast<int>(r->requirements()[0].op), static_cast<int>(Op::kEquals));
    QCOMPARE(static_cast<int>(r->requirements()[3].op), static_cast<int>(Op::kNotIn));
    QCOMPARE(static_cast<int>(r->requirements()[4].op), static_cast<int>(Op::kDoesNotExist));
    QCOMPARE(static_cast<int>(r->requirements().back().op), static_cast<int>(Op::kExists));
  }

  void emptyValuesAndKeywordsAsValues() {
    auto r = LabelSelector::parse("a=,b in (in,notin),c in ()");
    QVERIFY(r.ok());
    QCOMPARE(r->requirements()[0].values, std::vector<std::string>{""});
    QCOMPARE(r->requirements()[1].values, (std::vector<std::string>{"in", "notin"}));
    QCOMPARE(r->requirements()[2].values, std::vector<std::string>{""});
    QVERIFY(LabelSelector::parse("").ok());
    QVERIFY(LabelSelector::parse("")->empty());
  }

  void syntaxErrorsReadLikeKube() {
    QCOMPARE(parseError("app:monolith"),
             std::string("400 BadRequest: unable to parse requirement: <nil>: Invalid value: \"app:monolith\": "
                         "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
                         "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
                         "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"));
    QCOMPARE(parseError("app=-x"),
             std::string("400 BadRequest: unable to parse requirement: values[0][app]: Invalid value: \"-x\": "
                         "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
                         "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
                         "'my_value',  or '12345', regex used for validation is "
                         "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
    QCOMPARE(parseError("app.kubernetes_io/name=x"),
             std::string("400 BadRequest: unable to parse requirement: <nil>: Invalid value: "
                         "\"app.kubernetes_io/name\": prefix part a lowercase RFC 1123 subdomain must consist of "
                         "lower case alphanumeric characters, '-' or '.', and must start and end with an "
                         "alphanumeric character (e.g. 'example.com', regex used for validation is "
                         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
    QCOMPARE(parseError("x in (a"), std::string("400 BadRequest: unable to parse requirement: found '', expected: ',' or ')'"));
    QCOMPARE(parseError("x in a"), std::string("400 BadRequest: unable to parse requirement: found 'a' expected: '('"));
    QCOMPARE(parseError("x=a b"), std::string("400 BadRequest: found 'b', expected: ',' or 'end of string'"));
    QCOMPARE(parseError(",a"), std::string("400 BadRequest: found ',', expected: !, identifier, or 'end of string'"));
    QCOMPARE(parseError("a,"), std::string("400 BadRequest: found '', expected: identifier after ','"));
    QCOMPARE(parseError("x=(a)"), std::string("400 BadRequest: unable to parse requirement: found '(', expected: identifier"));
    QCOMPARE(parseError("x y"),
             std::string("400 BadRequest: unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"));
    QCOMPARE(parseError("x>a"),
             std::string("400 BadRequest: unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', "
                         "'Lt' operators, the value must be an integer"));
    QCOMPARE(parseError("!"), std::string("400 BadRequest: unable to parse requirement: found '', expected: identifier"));
  }

  void matching() {
    json labels = {{"app", "web"}, {"tier", "front"}, {"n", "7"}};
    QVERIFY(labelsMatch("app=web", labels));
    QVERIFY(labelsMatch("app==web,tier", labels));
    QVERIFY(!labelsMatch("app!=web", labels));
    QVERIFY(labelsMatch("missing!=x", labels));
    QVERIFY(labelsMatch("app in (db,web)", labels));
    QVERIFY(!labelsMatch("app notin (db,web)", labels));
    QVERIFY(labelsMatch("missing notin (x)", labels));
    QVERIFY(labelsMatch("!missing", labels));
    QVERIFY(!labelsMatch("!app", labels));
    QVERIFY(labelsMatch("n>5,n<8", labels));
    QVERIFY(!labelsMatch("n>7", labels));
    QVERIFY(!labelsMatch("app>1", labels));  // not an integer label: no match
    QVERIFY(labelsMatch("", labels));
    QVERIFY(!labelsMatch("app", json::object()));
  }

  void fromJsonLikeLabelSelectorAsSelector() {
    json sel = {{"matchLabels", {{"app", "web"}}},
                {"matchExpressions", json::array({{{"key", "tier"}, {"operator", "In"}, {"values", {"front", "back"}}},
                                                  {{"key", "legacy"}, {"operator", "DoesNotExist"}}})}};
    auto r = LabelSelector::fromJson(sel);
    QVERIFY(r.ok());
    QCOMPARE(r->toString(), std::string("app=web,!legacy,tier in (back,front)"));
    QVERIFY(r->matches({{"app", "web"}, {"tier", "back"}}));
    QVERIFY(!r->matches({{"app", "web"}, {"tier", "back"}, {"legacy", "1"}}));

    auto bad = LabelSelector::fromJson({{"matchExpressions", json::array({{{"key", "a"}, {"operator", "Foo"}}})}});
    QVERIFY(!bad.ok());
    QCOMPARE(bad.status().message(), std::string("\"Foo\" is not a valid label selector operator"));
    auto noValues = LabelSelector::fromJson({{"matchExpressions", json::array({{{"key", "a"}, {"operator", "In"}}})}});
    QVERIFY(!noValues.ok());
    QCOMPARE(noValues.status().message(),
             std::string("values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"));

    // {} selects everything, a null selector nothing.
    QVERIFY(LabelSelector::fromJson(json::object())->matches({{"a", "b"}}));
    auto nothing = LabelSelector::fromJson(json());
    QVERIFY(nothing.ok());
    QVERIFY(nothing->matchesNothing());
    QVERIFY(!nothing->matches({{"a", "b"}}));
  }

  void fieldSelectorsPerKind() {
    json pod = {{"metadata", {{"name", "p1"}, {"namespace", "default"}}},
                {"spec", {{"nodeName", "n1"}, {"restartPolicy", "Always"}}},
                {"status", {{"phase", "Running"}, {"podIPs", json::array({{{"ip", "10.0.0.5"}}})}}}};
    auto sel = FieldSelector::parse("spec.nodeName=n1,status.phase!=Pending", "", "Pod");
    QVERIFY(sel.ok());
    QVERIFY(sel->matches(pod));
    QVERIFY(FieldSelector::parse("spec.hostNetwork=false", "", "Pod")->matches(pod));
    QVERIFY(FieldSelector::parse("status.podIP=10.0.0.5", "", "Pod")->matches(pod));
    QVERIFY(!FieldSelector::parse("metadata.namespace==kube-system", "", "Pod")->matches(pod));
    // Old clients' spec.host means spec.nodeName.
    auto legacy = FieldSelector::parse("spec.host=n1", "", "Pod");
    QVERIFY(legacy.ok());
    QCOMPARE(legacy->terms()[0].field, std::string("spec.nodeName"));

    QCOMPARE(fieldError("spec.foo=bar", "", "Pod"), std::string("400 BadRequest: field label not supported: spec.foo"));
    QCOMPARE(fieldError("metadata.namespace=x", "", "Node"),
             std::string("400 BadRequest: field label not supported: metadata.namespace"));
    QCOMPARE(fieldError("spec.replicas=1", "apps", "Deployment"),
             std::string("400 BadRequest: \"spec.replicas\" is not a known field selector: only \"metadata.name\", "
                         "\"metadata.namespace\""));
    QCOMPARE(fieldError("spec.x=1", "example.com", "Widget"),
             std::string("400 BadRequest: field label not supported: spec.x"));
    QCOMPARE(fieldError("abc", "", "Pod"), std::string("400 BadRequest: invalid selector: 'abc'; can't understand 'abc'"));
    QCOMPARE(fieldError("metadata.name=a=b", "", "Pod"),
             std::string("400 BadRequest: invalid field selector: unescaped character in value: 61"));
    QCOMPARE(fieldError("metadata.name=a\\x", "", "Pod"),
             std::string("400 BadRequest: invalid field selector: invalid escape sequence: \\x"));

    QVERIFY(FieldSelector::parse("type=kubernetes.io/tls", "", "Secret")
                ->matches({{"metadata", {{"name", "s"}}}, {"type", "kubernetes.io/tls"}}));
    QVERIFY(FieldSelector::parse("spec.unschedulable=false", "", "Node")->matches({{"metadata", {{"name", "n"}}}}));
    QVERIFY(FieldSelector::parse("status.replicas=0", "apps", "ReplicaSet")->matches({{"metadata", {{"name", "r"}}}}));
    QVERIFY(FieldSelector::parse("involvedObject.kind=Pod,source=kubelet", "", "Event")
                ->matches({{"involvedObject", {{"kind", "Pod"}}}, {"source", {{"component", "kubelet"}}}}));
    QVERIFY(FieldSelector::parse("spec.type=NodePort", "", "Service")->matches({{"spec", {{"type", "NodePort"}}}}));
  }

  void eventFieldsInEitherShape() {
    json core = {{"involvedObject", {{"kind", "Pod"}, {"name", "p"}}}, {"reportingComponent", "kubelet"}};
    json modern = {{"regarding", {{"kind", "Pod"}, {"name", "p"}}}, {"reportingController", "kubelet"}};
    auto c = FieldSelector::parse("involvedObject.kind=Pod,reportingComponent=kubelet", "", "Event");
    auto m = FieldSelector::parse("regarding.name=p,reportingController=kubelet", "events.k8s.io", "Event");
    QVERIFY(c.ok() && m.ok());
    QVERIFY(c->matches(core) && c->matches(modern));
    QVERIFY(m->matches(core) && m->matches(modern));
    QVERIFY(!FieldSelector::parse("involvedObject.kind=Node", "", "Event")->matches(modern));
  }

  void fieldSelectorEscaping() {
    auto sel = FieldSelector::parse("metadata.name=a\\,b\\=c\\\\d", "", "ConfigMap");
    QVERIFY(sel.ok());
    QCOMPARE(sel->terms().size(), size_t(1));
    QCOMPARE(sel->terms()[0].value, std::string("a,b=c\\d"));
    QCOMPARE(sel->toString(), std::string("metadata.name=a\\,b\\=c\\\\d"));
    QVERIFY(sel->matches({{"metadata", {{"name", "a,b=c\\d"}}}}));
    QVERIFY(FieldSelector::parse("", "", "Pod")->empty());
  }
};

QTEST_APPLESS_MAIN(SelectorTest)
#include "selector_test.moc"
