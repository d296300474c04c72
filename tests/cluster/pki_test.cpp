// Certificates of a local cluster: the chain verifies, the serving certificate names every
// address kubectl and in-cluster clients use, the admin certificate is kubernetes-admin in
// system:masters, keys are private, and a second run reuses everything.

#include <sys/stat.h>

#include <QtTest>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "engine/cluster/layout.h"
#include "engine/cluster/pki.h"

using namespace orrery::cluster;

namespace {

X509* loadCert(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return nullptr;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return cert;
}

EVP_PKEY* loadKey(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return nullptr;
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return key;
}

// Verifies `leaf` against `ca` for `purpose` (X509_PURPOSE_SSL_SERVER / _CLIENT).
bool verifies(X509* leaf, X509* ca, int purpose, std::string* error = nullptr) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  bool ok = X509_verify_cert(ctx) == 1;
  if (!ok && error) *error = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok;
}

std::string subjectField(X509* cert, int nid) {
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), nid, buf, sizeof buf);
  return buf;
}

unsigned modeOf(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

std::string contents(const std::string& path) {
  auto r = readFile(path);
  return r.ok() ? *r : std::string();
}

}  // namespace

class PkiTest : public QObject {
  Q_OBJECT

 private slots:
  void createsAVerifyingChain() {
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    PkiPaths p{tmp.filePath("pki").toStdString()};
    auto result = ensurePki(p.dir);
    QVERIFY2(result.ok(), result.ok() ? "" : result.status().message().c_str());
    QVERIFY(result->createdCa);
    for (const char* f : {"ca.crt", "apiserver.crt", "admin.crt", "sa.key", "sa.pub"}) {
      QVERIFY2(std::find(result->issued.begin(), result->issued.end(), f) != result->issued.end(), f);
    }

    X509* ca = loadCert(p.caCert());
    X509* server = loadCert(p.apiserverCert());
    X509* admin = loadCert(p.adminCert());
    QVERIFY(ca && server && admin);
    QVERIFY(X509_check_ca(ca) > 0);
    QCOMPARE(X509_check_ca(server), 0);
    std::string err;
    QVERIFY2(verifies(server, ca, X509_PURPOSE_SSL_SERVER, &err), err.c_str());
    QVERIFY2(verifies(admin, ca, X509_PURPOSE_SSL_CLIENT, &err), err.c_str());
    // Each leaf is good for its own role only.
    QVERIFY(!verifies(admin, ca, X509_PURPOSE_SSL_SERVER));
    QVERIFY(!verifies(server, ca, X509_PURPOSE_SSL_CLIENT));

    // Keys belong to their certificates.
    EVP_PKEY* serverKey = loadKey(p.apiserverKey());
    EVP_PKEY* adminKey = loadKey(p.adminKey());
    EVP_PKEY* caKey = loadKey(p.caKey());
    EVP_PKEY* saKey = loadKey(p.saKey());
    QVERIFY(serverKey && adminKey && caKey && saKey);
    QCOMPARE(X509_check_private_key(server, serverKey), 1);
    QCOMPARE(X509_check_private_key(admin, adminKey), 1);
    QCOMPARE(X509_check_private_key(ca, caKey), 1);
    QCOMPARE(X509_check_private_key(server, adminKey), 0);
    QVERIFY(contents(p.saPub()).find("BEGIN PUBLIC KEY") != std::string::npos);

    EVP_PKEY_free(serverKey);
    EVP_PKEY_free(adminKey);
    EVP_PKEY_free(caKey);
    EVP_PKEY_free(saKey);
    X509_free(ca);
    X509_free(server);
    X509_free(admin);
  }

  void servingCertificateNamesEveryAddress() {
    QTemporaryDir tmp;
    PkiPaths p{tmp.filePath("pki").toStdString()};
    QVERIFY(ensurePki(p.dir).ok());
    X509* server = loadCert(p.apiserverCert());
    QVERIFY(server);
    for (const char* ip : {"127.0.0.1", "::1", "10.96.0.1"}) {
      QVERIFY2(X509_check_ip_asc(server, ip, 0) == 1, ip);
    }
    for (const char* dns : {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                            "kubernetes.default.svc.cluster.local"}) {
      QVERIFY2(X509_check_host(server, dns, 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr) == 1, dns);
    }
    QVERIFY(X509_check_host(server, "example.com", 0, 0, nullptr) != 1);
    QVERIFY(X509_check_ip_asc(server, "10.0.0.1", 0) != 1);
    X509_free(server);
  }

  void adminIsKubernetesAdminInSystemMasters() {
    QTemporaryDir tmp;
    PkiPaths p{tmp.filePath("pki").toStdString()};
    QVERIFY(ensurePki(p.dir).ok());
    X509* admin = loadCert(p.adminCert());
    QVERIFY(admin);
    QCOMPARE(subjectField(admin, NID_commonName), std::string("kubernetes-admin"));
    QCOMPARE(subjectField(admin, NID_organizationName), std::string("system:masters"));
    // Valid now, for about a year.
    QVERIFY(X509_cmp_current_time(X509_get0_notBefore(admin)) < 0);
    time_t in300Days = std::time(nullptr) + 300L * 24 * 3600;
    QVERIFY(X509_cmp_time(X509_get0_notAfter(admin), &in300Days) > 0);
    X509_free(admin);
  }

  void keysArePrivate() {
    QTemporaryDir tmp;
    PkiPaths p{tmp.filePath("pki").toStdString()};
    QVERIFY(ensurePki(p.dir).ok());
    QCOMPARE(modeOf(p.dir), 0700u);
    for (const auto& key : {p.caKey(), p.apiserverKey(), p.adminKey(), p.saKey()}) {
      QVERIFY2(modeOf(key) == 0600u, key.c_str());
    }
    QCOMPARE(modeOf(p.caCert()), 0644u);
  }

  void secondRunReusesEverything() {
    QTemporaryDir tmp;
    PkiPaths p{tmp.filePath("pki").toStdString()};
    QVERIFY(ensurePki(p.dir).ok());
    std::string ca = contents(p.caCert()), server = contents(p.apiserverCert()),
                admin = contents(p.adminKey()), sa = contents(p.saKey());
    auto again = ensurePki(p.dir);
    QVERIFY(again.ok());
    QVERIFY(!again->createdCa);
    QVERIFY(again->issued.empty());
    QCOMPARE(contents(p.caCert()), ca);
    QCOMPARE(contents(p.apiserverCert()), server);
    QCOMPARE(contents(p.adminKey()), admin);
    QCOMPARE(contents(p.saKey()), sa);
  }

  void missingLeafIsReissuedFromTheSameCa() {
    QTemporaryDir tmp;
    PkiPaths p{tmp.filePath("pki").toStdString()};
    QVERIFY(ensurePki(p.dir).ok());
    std::string ca = contents(p.caCert()), server = contents(p.apiserverCert());
    QVERIFY(std::remove(p.adminCert().c_str()) == 0);
    auto again = ensurePki(p.dir);
    QVERIFY(again.ok());
    QVERIFY(!again->createdCa);
    QCOMPARE(again->issued, std::vector<std::string>{"admin.crt"});
    QCOMPARE(contents(p.caCert()), ca);
    QCOMPARE(contents(p.apiserverCert()), server);
    X509* caCert = loadCert(p.caCert());
    X509* admin = loadCert(p.adminCert());
    QVERIFY(verifies(admin, caCert, X509_PURPOSE_SSL_CLIENT));
    X509_free(caCert);
    X509_free(admin);
  }

  void lostCaKeyMeansNewCaAndNewLeaves() {
    QTemporaryDir tmp;
    PkiPaths p{tmp.filePath("pki").toStdString()};
    QVERIFY(ensurePki(p.dir).ok());
    X509* oldServer = loadCert(p.apiserverCert());
    QVERIFY(std::remove(p.caKey().c_str()) == 0);
    auto again = ensurePki(p.dir);
    QVERIFY(again.ok());
    QVERIFY(again->createdCa);
    X509* caCert = loadCert(p.caCert());
    X509* server = loadCert(p.apiserverCert());
    X509* admin = loadCert(p.adminCert());
    QVERIFY(verifies(server, caCert, X509_PURPOSE_SSL_SERVER));
    QVERIFY(verifies(admin, caCert, X509_PURPOSE_SSL_CLIENT));
    QVERIFY(!verifies(oldServer, caCert, X509_PURPOSE_SSL_SERVER));
    X509_free(oldServer);
    X509_free(caCert);
    X509_free(server);
    X509_free(admin);
  }

  void fast() {
    // `orrery up` must stay well under 300 ms in total; certificates are a small part of it.
    QTemporaryDir tmp;
    QElapsedTimer timer;
    timer.start();
    QVERIFY(ensurePki(tmp.filePath("pki").toStdString()).ok());
    QVERIFY2(timer.elapsed() < 150, QByteArray::number(timer.elapsed()));
  }
};

QTEST_APPLESS_MAIN(PkiTest)
#include "pki_test.moc"
