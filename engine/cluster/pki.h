#pragma once
// The certificates of a local cluster, made with OpenSSL 3: a CA, the API server's serving
// certificate, the admin client certificate (CN=kubernetes-admin, O=system:masters) and the
// service-account token signing key pair. ECDSA P-256 throughout (key generation takes
// about a millisecond, so creating a cluster stays fast).

#include <string>
#include <vector>

#include "engine/api/status.h"

namespace orrery::cluster {

/// The files of a cluster's pki directory.
struct PkiPaths {
  std::string dir;

  std::string caCert() const { return dir + "/ca.crt"; }
  std::string caKey() const { return dir + "/ca.key"; }
  std::string apiserverCert() const { return dir + "/apiserver.crt"; }
  std::string apiserverKey() const { return dir + "/apiserver.key"; }
  std::string adminCert() const { return dir + "/admin.crt"; }
  std::string adminKey() const { return dir + "/admin.key"; }
  std::string saKey() const { return dir + "/sa.key"; }
  std::string saPub() const { return dir + "/sa.pub"; }
};

/// Subject alternative names of the serving certificate: loopback (so kubectl reaches it at
/// 127.0.0.1, ::1 or localhost) and the in-cluster names and service IP of the API.
struct ServingNames {
  std::vector<std::string> dnsNames = {"localhost",
                                       "kubernetes",
                                       "kubernetes.default",
                                       "kubernetes.default.svc",
                                       "kubernetes.default.svc.cluster.local"};
  std::vector<std::string> ipAddresses = {"127.0.0.1", "::1", "10.96.0.1"};
};

/// What ensurePki() did.
struct PkiResult {
  bool createdCa = false;           // a new CA (so every certificate is new)
  std::vector<std::string> issued;  // file names of certificates/keys (re)written
};

/// Makes sure every certificate and key exists in `dir` (created 0700; keys 0600). Existing,
/// valid files are reused, so a cluster keeps its identity across `down`/`up`; a leaf that is
/// missing, not signed by the CA, or expires within 30 days is issued again from the CA.
/// A missing CA (or CA key) means a new CA and new leaves.
api::Result<PkiResult> ensurePki(const std::string& dir, const ServingNames& names = {});

/// Validity of new certificates: CA ten years, leaves one year (as kubeadm).
inline constexpr long kCaValidityDays = 3650;
inline constexpr long kLeafValidityDays = 365;

}  // namespace orrery::cluster
