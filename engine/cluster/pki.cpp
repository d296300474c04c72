#include "engine/cluster/pki.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "engine/cluster/layout.h"

namespace orrery::cluster {

namespace {

using api::Result;
using api::Status;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Free>;
using CertPtr = std::unique_ptr<X509, Free>;
using BioPtr = std::unique_ptr<BIO, Free>;

std::string opensslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Status sslFailure(const std::string& what) {
  return Status::internal("cannot " + what + ": " + opensslError());
}

Result<KeyPtr> newKey() {
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return sslFailure("generate an ECDSA P-256 key");
  return key;
}

std::string bioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

Result<std::string> keyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return sslFailure("encode a private key");
  }
  return bioToString(bio.get());
}

Result<std::string> pubKeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PUBKEY(bio.get(), key)) return sslFailure("encode a public key");
  return bioToString(bio.get());
}

Result<std::string> certPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return sslFailure("encode a certificate");
  return bioToString(bio.get());
}

// Loading returns null (no Status) for a missing or unreadable file: the caller re-issues.
CertPtr loadCert(const std::string& path) {
  auto text = readFile(path);
  if (!text.ok()) return nullptr;
  BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return cert;
}

KeyPtr loadKey(const std::string& path) {
  auto text = readFile(path);
  if (!text.ok()) return nullptr;
  BioPtr bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  return key;
}

Status addExt(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || !X509_add_ext(cert, ext.get(), -1)) {
    return sslFailure(std::string("add extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  return Status::ok();
}

struct CertSpec {
  std::string commonName;
  std::string organization;  // empty: none
  bool isCa = false;
  std::string extKeyUsage;  // "serverAuth" / "clientAuth"
  std::string subjectAltNames;  // x509v3_config form: "DNS:a,IP:1.2.3.4"
  long validityDays = kLeafValidityDays;
};

// Issues a certificate for `key`, signed by `issuer`/`issuerKey` (null issuer: self-signed).
Result<CertPtr> issue(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey) {
  CertPtr cert(X509_new());
  if (!cert) return sslFailure("allocate a certificate");
  X509_set_version(cert.get(), X509_VERSION_3);

  // A random positive 127-bit serial, as RFC 5280 asks for unpredictable serials.
  std::unique_ptr<BIGNUM, Free> serial(BN_new());
  if (!BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()))) {
    return sslFailure("make a serial number");
  }
  // Backdated a little, as kubeadm does, so a slightly skewed clock still accepts it.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -5 * 60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.validityDays * 24 * 3600);

  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!spec.organization.empty()) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(spec.organization.c_str()), -1,
                               -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(spec.commonName.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  if (!X509_set_pubkey(cert.get(), key)) return sslFailure("set a certificate's public key");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  Status s;
  if (spec.isCa) {
    s = addExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    if (s) s = addExt(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
    if (s) s = addExt(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  } else {
    s = addExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    if (s) s = addExt(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    if (s) s = addExt(cert.get(), &ctx, NID_ext_key_usage, spec.extKeyUsage);
    if (s) s = addExt(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    if (s && !spec.subjectAltNames.empty()) {
      s = addExt(cert.get(), &ctx, NID_subject_alt_name, spec.subjectAltNames);
    }
  }
  if (!s) return s;

  if (!X509_sign(cert.get(), issuerKey ? issuerKey : key, EVP_sha256())) {
    return sslFailure("sign the certificate for " + spec.commonName);
  }
  return cert;
}

bool expiresWithin(X509* cert, long days) {
  time_t limit = std::time(nullptr) + days * 24 * 3600;
  return X509_cmp_time(X509_get0_notAfter(cert), &limit) <= 0;
}

bool signedBy(X509* cert, X509* ca) {
  std::unique_ptr<X509_STORE, Free> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, Free> ctx(X509_STORE_CTX_new());
  if (!store || !ctx || !X509_STORE_add_cert(store.get(), ca) ||
      !X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr)) {
    ERR_clear_error();
    return false;
  }
  bool ok = X509_verify_cert(ctx.get()) == 1;
  ERR_clear_error();
  return ok;
}

bool coversNames(X509* cert, const ServingNames& names) {
  for (const auto& dns : names.dnsNames) {
    if (X509_check_host(cert, dns.c_str(), dns.size(), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                        nullptr) != 1) {
      return false;
    }
  }
  for (const auto& ip : names.ipAddresses) {
    if (X509_check_ip_asc(cert, ip.c_str(), 0) != 1) return false;
  }
  return true;
}

std::string sanString(const ServingNames& names) {
  std::string out;
  for (const auto& d : names.dnsNames) out += (out.empty() ? "" : ",") + std::string("DNS:") + d;
  for (const auto& i : names.ipAddresses) out += (out.empty() ? "" : ",") + std::string("IP:") + i;
  return out;
}

Status writeKeyAndCert(const std::string& keyPath, EVP_PKEY* key, const std::string& certPath,
                       X509* cert) {
  auto k = keyPem(key);
  if (!k.ok()) return k.status();
  auto c = certPem(cert);
  if (!c.ok()) return c.status();
  // Key first: a crash in between leaves a cert whose key does not match, which the next
  // ensurePki() detects and re-issues.
  if (Status s = writeFileAtomic(keyPath, *k, 0600); !s) return s;
  return writeFileAtomic(certPath, *c, 0644);
}

}  // namespace

Result<PkiResult> ensurePki(const std::string& dir, const ServingNames& names) {
  PkiPaths p{dir};
  PkiResult result;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::internal("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);

  // The CA: reuse when both halves are there and belong together.
  CertPtr ca = loadCert(p.caCert());
  KeyPtr caKey = loadKey(p.caKey());
  if (!ca || !caKey || X509_check_private_key(ca.get(), caKey.get()) != 1 ||
      expiresWithin(ca.get(), 30)) {
    ERR_clear_error();
    auto key = newKey();
    if (!key.ok()) return key.status();
    auto cert = issue({"orrery-ca", "orrery", true, "", "", kCaValidityDays}, key->get(), nullptr,
                      nullptr);
    if (!cert.ok()) return cert.status();
    caKey = std::move(*key);
    ca = std::move(*cert);
    if (Status s = writeKeyAndCert(p.caKey(), caKey.get(), p.caCert(), ca.get()); !s) return s;
    result.createdCa = true;
    result.issued.push_back("ca.crt");
  }

  // Leaves: reuse unless missing, mismatched, not from this CA, expiring, or (serving cert)
  // missing a name.
  struct Leaf {
    std::string certPath, keyPath, file;
    CertSpec spec;
    bool serving;
  };
  const Leaf leaves[] = {
      {p.apiserverCert(), p.apiserverKey(), "apiserver.crt",
       {"kube-apiserver", "", false, "serverAuth", sanString(names), kLeafValidityDays}, true},
      {p.adminCert(), p.adminKey(), "admin.crt",
       {"kubernetes-admin", "system:masters", false, "clientAuth", "", kLeafValidityDays}, false},
  };
  for (const Leaf& leaf : leaves) {
    CertPtr cert = loadCert(leaf.certPath);
    KeyPtr key = loadKey(leaf.keyPath);
    bool reuse = !result.createdCa && cert && key &&
                 X509_check_private_key(cert.get(), key.get()) == 1 &&
                 signedBy(cert.get(), ca.get()) && !expiresWithin(cert.get(), 30) &&
                 (!leaf.serving || coversNames(cert.get(), names));
    ERR_clear_error();
    if (reuse) continue;
    auto newK = newKey();
    if (!newK.ok()) return newK.status();
    auto newC = issue(leaf.spec, newK->get(), ca.get(), caKey.get());
    if (!newC.ok()) return newC.status();
    if (Status s = writeKeyAndCert(leaf.keyPath, newK->get(), leaf.certPath, newC->get()); !s) {
      return s;
    }
    result.issued.push_back(leaf.file);
  }

  // The service-account signing key pair (ES256 tokens). Independent of the CA.
  KeyPtr saKey = loadKey(p.saKey());
  auto saPubText = readFile(p.saPub());
  if (!saKey || !saPubText.ok()) {
    if (!saKey) {
      auto k = newKey();
      if (!k.ok()) return k.status();
      saKey = std::move(*k);
      auto pem = keyPem(saKey.get());
      if (!pem.ok()) return pem.status();
      if (Status s = writeFileAtomic(p.saKey(), *pem, 0600); !s) return s;
      result.issued.push_back("sa.key");
    }
    auto pub = pubKeyPem(saKey.get());
    if (!pub.ok()) return pub.status();
    if (Status s = writeFileAtomic(p.saPub(), *pub, 0644); !s) return s;
    result.issued.push_back("sa.pub");
  }
  return result;
}

}  // namespace orrery::cluster
