// resource.Quantity: what kube-apiserver stores and prints for the quantities users write.
#include <QtTest>

#include "engine/api/quantity.h"

using namespace orrery::api;

namespace {

std::string canon(const std::string& text) {
  auto q = Quantity::parse(text);
  if (!q.ok()) return "error: " + q.status().message();
  return q->toString();
}

Quantity q(const std::string& text) {
  auto r = Quantity::parse(text);
  if (!r.ok()) qFatal("bad quantity %s", text.c_str());
  return *r;
}

}  // namespace

class QuantityTest : public QObject {
  Q_OBJECT

 private slots:
  void canonicalForms_data() {
    QTest::addColumn<QString>("in");
    QTest::addColumn<QString>("out");
    const char* cases[][2] = {
        {"100m", "100m"}, {"0.5", "500m"},   {"1.5", "1500m"},   {"1000m", "1"},    {"1e3", "1e3"},
        {"1000", "1k"},   {"1Gi", "1Gi"},    {"1024Mi", "1Gi"},  {"0.5Gi", "512Mi"}, {"1.5Ki", "1536"},
        {"100Mi", "100Mi"}, {"1536Mi", "1536Mi"}, {"0", "0"},    {"0Gi", "0"},      {"-1", "-1"},
        {"1000000", "1M"}, {"1n", "1n"},     {"0.1n", "1n"},     {"12e6", "12e6"},  {"1.5e3", "1500"},
        {"128974848", "128974848"}, {"129e6", "129e6"}, {"123Mi", "123Mi"}, {"2.5G", "2500M"},
        {" 250m ", "250m"}, {"1E", "1E"}, {"512", "512"}, {"1Ki", "1Ki"}, {"0.001", "1m"},
    };
    for (const auto& c : cases) QTest::newRow(c[0]) << QString(c[0]) << QString(c[1]);
  }
  void canonicalForms() {
    QFETCH(QString, in);
    QFETCH(QString, out);
    QCOMPARE(QString::fromStdString(canon(in.toStdString())), out);
  }

  void parseErrors() {
    const std::string wrong =
        "error: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    QCOMPARE(canon(""), wrong);
    QCOMPARE(canon("abc"), wrong);
    QCOMPARE(canon("1Q"), wrong);
    QCOMPARE(canon("1.5.5"), wrong);
    QCOMPARE(canon("1e"), std::string("error: unable to parse quantity's suffix"));
    QCOMPARE(canon("1Ki2"), std::string("error: unable to parse quantity's suffix"));
    auto r = Quantity::parse("x");
    QCOMPARE(r.status().code(), 400);
  }

  void compareAndValues() {
    QVERIFY(q("1Gi").compare(q("1G")) > 0);
    QVERIFY(q("500m") == q("0.5"));
    QVERIFY(q("2").compare(q("1999m")) > 0);
    QVERIFY(q("-1").compare(q("0")) < 0);
    QVERIFY(q("1E").compare(q("1n")) > 0);
    QCOMPARE(q("1.5").milliValue(), int64_t(1500));
    QCOMPARE(q("1500m").value(), int64_t(2));  // rounds up, as Value()
    QCOMPARE(q("1Gi").value(), int64_t(1073741824));
    QCOMPARE(Quantity::fromMilli(1500).toString(), std::string("1500m"));
    QCOMPARE(Quantity::fromInt(1073741824, Quantity::Format::kBinarySI).toString(), std::string("1Gi"));
  }

  void roundUpAndAdd() {
    Quantity a = q("100n");
    QVERIFY(!a.roundUp(-3));
    QCOMPARE(a.toString(), std::string("1m"));
    Quantity b = q("250m");
    QVERIFY(b.roundUp(-3));
    QCOMPARE(b.toString(), std::string("250m"));
    Quantity c = q("100m");
    c.add(q("1"));
    QCOMPARE(c.toString(), std::string("1100m"));
    Quantity d = q("1Gi");
    d.sub(q("512Mi"));
    QCOMPARE(d.toString(), std::string("512Mi"));
  }
};

QTEST_APPLESS_MAIN(QuantityTest)
#include "quantity_test.moc"
