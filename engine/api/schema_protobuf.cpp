// Schema-driven decoding of Kubernetes protobuf bodies. The wire format is plain proto2 as
// gogo-protobuf writes it for kube's generated.proto: value fields are always written (even
// when zero), pointer fields only when set, repeated scalars unpacked, maps as repeated
// key=1/value=2 entry messages, and a few apimachinery types with their own messages
// (Quantity, IntOrString, Time, MicroTime, Duration, RawExtension, FieldsV1, JSON).

#include "engine/api/schema_protobuf.h"

#include "engine/api/base64.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <set>

namespace orrery::api {
namespace {

constexpr std::string_view kMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.";

// Fields of Go value (non-pointer) type with `omitempty` whose zero number/false kube's JSON
// drops. Pointer fields (replicas, backoffLimit, automountServiceAccountToken...) are not
// here: their zero is meaningful and kept. "Type.field", or "*.field" for every type.
// TODO(protobuf): move this into the schema language (a `pb=N` flag) once the types are
// audited against types.go.
const std::set<std::string>& valueOmitEmpty() {
  static const std::set<std::string> s = {
      "*.readOnly", "*.observedGeneration",
      "ObjectMeta.generation",
      "DeploymentSpec.minReadySeconds", "DeploymentSpec.paused",
      "DeploymentStatus.replicas", "DeploymentStatus.updatedReplicas",
      "DeploymentStatus.readyReplicas", "DeploymentStatus.availableReplicas",
      "DeploymentStatus.unavailableReplicas",
      "ReplicaSetSpec.minReadySeconds", "ReplicaSetStatus.fullyLabeledReplicas",
      "ReplicaSetStatus.readyReplicas", "ReplicaSetStatus.availableReplicas",
      "StatefulSetSpec.minReadySeconds", "StatefulSetStatus.readyReplicas",
      "StatefulSetStatus.currentReplicas", "StatefulSetStatus.updatedReplicas",
      "StatefulSetStatus.availableReplicas",
      "DaemonSetSpec.minReadySeconds", "DaemonSetStatus.updatedNumberScheduled",
      "DaemonSetStatus.numberAvailable", "DaemonSetStatus.numberUnavailable",
      "PodSpec.hostNetwork", "PodSpec.hostPID", "PodSpec.hostIPC",
      "Container.stdin", "Container.stdinOnce", "Container.tty",
      "EphemeralContainer.stdin", "EphemeralContainer.stdinOnce", "EphemeralContainer.tty",
      "ContainerPort.hostPort",
      "Probe.initialDelaySeconds", "Probe.timeoutSeconds", "Probe.periodSeconds",
      "Probe.successThreshold", "Probe.failureThreshold",
      "ServicePort.nodePort", "ServiceSpec.publishNotReadyAddresses",
      "JobStatus.active", "JobStatus.succeeded", "JobStatus.failed",
      "ScaleSpec.replicas", "PriorityClass.globalDefault", "NodeSpec.unschedulable",
      "Event.count", "SubjectAccessReviewStatus.denied", "ServiceSpec.healthCheckNodePort",
      "SubjectRulesReviewStatus.incomplete", "DaemonSetSpec.minReadySeconds",
  };
  return s;
}

// map[string][]byte fields: values are raw bytes on the wire, base64 strings in JSON.
const std::set<std::string>& bytesFields() {
  static const std::set<std::string> s = {"Secret.data", "ConfigMap.binaryData"};
  return s;
}

std::string shortName(const std::string& refName) {
  auto dot = refName.rfind('.');
  return dot == std::string::npos ? refName : refName.substr(dot + 1);
}

// "1.5" from 1500 with 3 digits of precision; trailing zeros trimmed.
std::string withFraction(uint64_t v, int prec) {
  uint64_t scale = 1;
  for (int i = 0; i < prec; ++i) scale *= 10;
  std::string frac = std::to_string(v % scale);
  frac.insert(0, prec - frac.size(), '0');
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  return std::to_string(v / scale) + (frac.empty() ? "" : "." + frac);
}

// Go's time.Duration.String(): "0s", "1.5s", "1m30s", "1h0m0s", "500ms", "2µs", "100ns".
std::string goDuration(int64_t d) {
  if (d == 0) return "0s";
  std::string sign = d < 0 ? "-" : "";
  uint64_t u = d < 0 ? uint64_t(0) - uint64_t(d) : uint64_t(d);
  if (u < 1000) return sign + std::to_string(u) + "ns";
  if (u < 1000000) return sign + withFraction(u, 3) + "\xC2\xB5s";
  if (u < 1000000000) return sign + withFraction(u, 6) + "ms";
  uint64_t secs = u / 1000000000;
  std::string out = withFraction(secs % 60 * 1000000000 + u % 1000000000, 9) + "s";
  if (secs >= 60) out = std::to_string(secs / 60 % 60) + "m" + out;
  if (secs >= 3600) out = std::to_string(secs / 3600) + "h" + out;
  return sign + out;
}

std::string rfc3339(int64_t seconds, int32_t nanos, bool micro) {
  time_t t = static_cast<time_t>(seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (micro) {
    char frac[16];
    snprintf(frac, sizeof frac, ".%06d", (nanos / 1000) % 1000000);
    out += frac;
  }
  return out + "Z";
}

// One field of a message as read from the wire.
struct Field {
  uint32_t number = 0;
  int wire = 0;
  uint64_t varint = 0;     // wire 0, 1, 5
  std::string_view bytes;  // wire 2
};

const char* wireName(int w) {
  switch (w) {
    case 0: return "varint";
    case 1: return "fixed64";
    case 2: return "bytes";
    case 5: return "fixed32";
    default: return "unknown";
  }
}

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool done() const { return pos_ >= d_.size(); }

  bool varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= d_.size()) return false;
      uint8_t b = uint8_t(d_[pos_++]);
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *out = v;
        return true;
      }
    }
    return false;
  }

  // Reads the next field; false with *err set on malformed input.
  bool next(Field* f, std::string* err) {
    uint64_t key = 0;
    if (!varint(&key)) {
      *err = "unexpected EOF reading a field key";
      return false;
    }
    f->number = uint32_t(key >> 3);
    f->wire = int(key & 7);
    if (f->number == 0) {
      *err = "illegal field number 0";
      return false;
    }
    switch (f->wire) {
      case 0:
        if (!varint(&f->varint)) {
          *err = "unexpected EOF in a varint";
          return false;
        }
        return true;
      case 1:
      case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if (d_.size() - pos_ < n) {
          *err = "unexpected EOF in a fixed-size value";
          return false;
        }
        uint64_t v = 0;
        for (size_t i = 0; i < n; ++i) v |= uint64_t(uint8_t(d_[pos_ + i])) << (8 * i);
        pos_ += n;
        f->varint = v;
        return true;
      }
      case 2: {
        uint64_t len = 0;
        if (!varint(&len) || len > d_.size() - pos_) {
          *err = "unexpected EOF: a length-delimited field runs past the end of its message";
          return false;
        }
        f->bytes = d_.substr(pos_, len);
        pos_ += len;
        return true;
      }
      default:
        *err = "unsupported wire type " + std::to_string(f->wire);
        return false;
    }
  }

 private:
  std::string_view d_;
  size_t pos_ = 0;
};

class Decoder {
 public:
  // Decodes a message with object schema `s`; false with err_ set on failure.
  bool message(std::string_view bytes, const Schema& s, const std::string& path,
               nlohmann::json* out);

  std::string err_;

 private:
  bool fail(const std::string& path, const std::string& what) {
    err_ = what + (path.empty() ? "" : " at " + path);
    return false;
  }
  bool field(const Field& f, const std::string& name, const Schema& s,
             const std::string& path, nlohmann::json* out);
  bool special(std::string_view bytes, const Schema& s, const std::string& path,
               nlohmann::json* out, bool* handled);
  bool scalar(const Field& f, const Schema& s, const std::string& path, nlohmann::json* out);
  bool value(const Field& f, const Schema& s, const std::string& path, nlohmann::json* out);
  bool jsonBytes(std::string_view bytes, const std::string& path, nlohmann::json* out);
};

bool Decoder::jsonBytes(std::string_view bytes, const std::string& path, nlohmann::json* out) {
  if (bytes.empty()) {
    *out = nullptr;
    return true;
  }
  if (bytes.substr(0, kKubernetesProtobufMagic.size()) == kKubernetesProtobufMagic) {
    // TODO(protobuf): an embedded protobuf object in a RawExtension (never sent by kubectl).
    return fail(path, "embedded protobuf objects are not supported, send JSON");
  }
  auto v = nlohmann::json::parse(bytes, nullptr, false);
  if (v.is_discarded()) return fail(path, "embedded raw object is not valid JSON");
  *out = std::move(v);
  return true;
}

// The apimachinery types with their own wire messages. Sets *handled when `s` is one.
bool Decoder::special(std::string_view bytes, const Schema& s, const std::string& path,
                      nlohmann::json* out, bool* handled) {
  *handled = true;
  const std::string& ref = s.refName;
  std::string err;
  Reader r(bytes);
  Field f;
  if (ref == "io.k8s.apimachinery.pkg.api.resource.Quantity" ||
      (s.type == Schema::Type::kIntOrString && s.format == "quantity")) {
    std::string q;
    while (!r.done()) {
      if (!r.next(&f, &err)) return fail(path, err);
      if (f.number == 1 && f.wire == 2) q = std::string(f.bytes);
    }
    *out = q;
    return true;
  }
  if (s.type == Schema::Type::kIntOrString) {
    int64_t type = 0, intVal = 0;
    std::string strVal;
    while (!r.done()) {
      if (!r.next(&f, &err)) return fail(path, err);
      if (f.number == 1 && f.wire == 0) type = int64_t(f.varint);
      if (f.number == 2 && f.wire == 0) intVal = int32_t(uint32_t(f.varint));
      if (f.number == 3 && f.wire == 2) strVal = std::string(f.bytes);
    }
    if (type == 1) {
      *out = strVal;
    } else {
      *out = intVal;
    }
    return true;
  }
  if (ref.rfind(kMeta, 0) == 0) {
    std::string name = ref.substr(kMeta.size());
    if (name == "Time" || name == "MicroTime") {
      int64_t seconds = 0;
      int32_t nanos = 0;
      while (!r.done()) {
        if (!r.next(&f, &err)) return fail(path, err);
        if (f.number == 1 && f.wire == 0) seconds = int64_t(f.varint);
        if (f.number == 2 && f.wire == 0) nanos = int32_t(uint32_t(f.varint));
      }
      // An empty message is Go's zero time: JSON null, which kube's JSON shows and we omit.
      *out = bytes.empty() ? nlohmann::json() : nlohmann::json(rfc3339(seconds, nanos, name == "MicroTime"));
      return true;
    }
    if (name == "Duration") {
      int64_t d = 0;
      while (!r.done()) {
        if (!r.next(&f, &err)) return fail(path, err);
        if (f.number == 1 && f.wire == 0) d = int64_t(f.varint);
      }
      *out = goDuration(d);
      return true;
    }
    if (name == "FieldsV1") {
      std::string_view raw;
      while (!r.done()) {
        if (!r.next(&f, &err)) return fail(path, err);
        if (f.number == 1 && f.wire == 2) raw = f.bytes;
      }
      return jsonBytes(raw, path, out);
    }
  }
  if (ref == "io.k8s.apimachinery.pkg.runtime.RawExtension" ||
      ref == "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON" ||
      (s.type == Schema::Type::kAny && s.protoFields.empty())) {
    std::string_view raw;
    while (!r.done()) {
      if (!r.next(&f, &err)) return fail(path, err);
      if (f.number == 1 && f.wire == 2) raw = f.bytes;
    }
    return jsonBytes(raw, path, out);
  }
  *handled = false;
  return true;
}

bool Decoder::scalar(const Field& f, const Schema& s, const std::string& path,
                     nlohmann::json* out) {
  auto wrongWire = [&](const char* expected) {
    return fail(path, std::string("wrong wire type ") + wireName(f.wire) + " (expected " +
                          expected + ")");
  };
  switch (s.type) {
    case Schema::Type::kString:
      if (f.wire != 2) return wrongWire("bytes");
      if (s.format == "byte") {
        *out = api::base64Encode(f.bytes);
      } else {
        *out = std::string(f.bytes);
      }
      return true;
    case Schema::Type::kBoolean:
      if (f.wire != 0) return wrongWire("varint");
      *out = f.varint != 0;
      return true;
    case Schema::Type::kInteger:
      if (f.wire == 0) {
        // int32 negatives are sign-extended to 64 bits on the wire.
        *out = s.format == "int32" ? int64_t(int32_t(uint32_t(f.varint))) : int64_t(f.varint);
      } else if (f.wire == 5) {
        *out = int64_t(int32_t(uint32_t(f.varint)));
      } else if (f.wire == 1) {
        *out = int64_t(f.varint);
      } else {
        return wrongWire("varint");
      }
      return true;
    case Schema::Type::kNumber: {
      if (f.wire == 1) {
        double d;
        uint64_t v = f.varint;
        std::memcpy(&d, &v, sizeof d);
        *out = d;
      } else if (f.wire == 5) {
        float fl;
        uint32_t v = uint32_t(f.varint);
        std::memcpy(&fl, &v, sizeof fl);
        *out = double(fl);
      } else if (f.wire == 0) {
        *out = int64_t(f.varint);
      } else {
        return wrongWire("fixed64");
      }
      return true;
    }
    default:
      return fail(path, "internal: not a scalar schema");
  }
}

// One (non-repeated) value of schema `s` from field `f`.
bool Decoder::value(const Field& f, const Schema& s, const std::string& path,
                    nlohmann::json* out) {
  if (f.wire == 2) {
    bool handled = false;
    if (!special(f.bytes, s, path, out, &handled)) return false;
    if (handled) return true;
  }
  switch (s.type) {
    case Schema::Type::kObject:
      if (f.wire != 2) {
        return fail(path, std::string("wrong wire type ") + wireName(f.wire) +
                              " (expected bytes)");
      }
      return message(f.bytes, s, path, out);
    case Schema::Type::kString:
    case Schema::Type::kBoolean:
    case Schema::Type::kInteger:
    case Schema::Type::kNumber:
      return scalar(f, s, path, out);
    case Schema::Type::kIntOrString:
    case Schema::Type::kAny:
      return fail(path, std::string("wrong wire type ") + wireName(f.wire) + " (expected bytes)");
    default:
      return fail(path, "internal: unexpected nested list or map");
  }
}

bool isZero(const nlohmann::json& v) {
  return (v.is_string() && v.get_ref<const std::string&>().empty()) ||
         (v.is_boolean() && !v.get<bool>()) ||
         (v.is_number_integer() && v.get<int64_t>() == 0) ||
         (v.is_number_float() && v.get<double>() == 0.0);
}

bool Decoder::field(const Field& f, const std::string& name, const Schema& s,
                    const std::string& path, nlohmann::json* out) {
  std::string err;
  const std::string parent = shortName(s.refName);
    const Schema* child = s.child(name);
    if (!child) return true;
    const std::string fpath = path.empty() ? name : path + "." + name;

    if (child->type == Schema::Type::kArray && child->items) {
      nlohmann::json& arr = (*out)[name];
      if (!arr.is_array()) arr = nlohmann::json::array();
      const Schema& item = *child->items;
      const bool packable = item.type == Schema::Type::kInteger ||
                            item.type == Schema::Type::kBoolean ||
                            item.type == Schema::Type::kNumber;
      if (packable && f.wire == 2) {
        // Packed repeated scalars: the elements' wire type follows from the item schema.
        Reader pr(f.bytes);
        size_t off = 0;
        while (item.type == Schema::Type::kNumber ? off < f.bytes.size() : !pr.done()) {
          Field e;
          e.number = f.number;
          if (item.type == Schema::Type::kNumber) {
            if (f.bytes.size() - off < 8) return fail(fpath, "unexpected EOF in packed doubles");
            e.wire = 1;
            for (int i = 0; i < 8; ++i) e.varint |= uint64_t(uint8_t(f.bytes[off + i])) << (8 * i);
            off += 8;
          } else {
            e.wire = 0;
            if (!pr.varint(&e.varint)) return fail(fpath, "unexpected EOF in a packed list");
          }
          nlohmann::json v;
          if (!scalar(e, item, fpath + "[" + std::to_string(arr.size()) + "]", &v)) return false;
          arr.push_back(std::move(v));
        }
        return true;
      }
      nlohmann::json v;
      if (!value(f, item, fpath + "[" + std::to_string(arr.size()) + "]", &v)) return false;
      arr.push_back(std::move(v));
      return true;
    }

    if (child->type == Schema::Type::kMap && child->items) {
      if (f.wire != 2) {
        return fail(fpath, std::string("wrong wire type ") + wireName(f.wire) +
                               " (expected bytes)");
      }
      nlohmann::json& map = (*out)[name];
      if (!map.is_object()) map = nlohmann::json::object();
      Reader er(f.bytes);
      std::string key;
      nlohmann::json v;
      bool haveValue = false;
      Field e;
      while (!er.done()) {
        if (!er.next(&e, &err)) return fail(fpath, err);
        if (e.number == 1) {
          if (e.wire != 2) return fail(fpath, "wrong wire type for a map key");
          key = std::string(e.bytes);
        } else if (e.number == 2) {
          const std::string vpath = fpath + "." + key;
          if (bytesFields().count(parent + "." + name) && e.wire == 2) {
            v = api::base64Encode(e.bytes);  // map[string][]byte (Secret.data, ConfigMap.binaryData)
          } else if (child->items->type == Schema::Type::kArray && child->items->items) {
            // map[string][]string is a map of ExtraValue messages: repeated items = 1.
            if (e.wire != 2) return fail(vpath, "wrong wire type for a list value");
            v = nlohmann::json::array();
            Reader xr(e.bytes);
            Field x;
            while (!xr.done()) {
              if (!xr.next(&x, &err)) return fail(vpath, err);
              if (x.number != 1) continue;
              nlohmann::json item;
              if (!value(x, *child->items->items, vpath, &item)) return false;
              v.push_back(std::move(item));
            }
          } else if (!value(e, *child->items, vpath, &v)) {
            return false;
          }
          haveValue = true;
        }
      }
      if (!haveValue) {
        // An absent value is the value type's zero.
        switch (child->items->type) {
          case Schema::Type::kString: v = ""; break;
          case Schema::Type::kInteger: v = 0; break;
          case Schema::Type::kBoolean: v = false; break;
          case Schema::Type::kArray: v = nlohmann::json::array(); break;
          default: v = nlohmann::json::object();
        }
        if (child->items->format == "quantity" ||
            child->items->refName == "io.k8s.apimachinery.pkg.api.resource.Quantity") {
          v = "0";
        }
      }
      map[key] = std::move(v);
      return true;
    }

    nlohmann::json v;
    if (!value(f, *child, fpath, &v)) return false;
    if (v.is_null()) {
      out->erase(name);
      return true;
    }
    const bool required =
        std::find(s.required.begin(), s.required.end(), name) != s.required.end();
    if (!required && isZero(v)) {
      // Empty strings of optional fields are dropped (Go `omitempty`; kube's pointer strings
      // are rare). Zero numbers and false only for Go value fields.
      const bool drop = v.is_string() || valueOmitEmpty().count("*." + name) ||
                        valueOmitEmpty().count(parent + "." + name);
      if (drop) {
        out->erase(name);
        return true;
      }
    }
    (*out)[name] = std::move(v);
  return true;
}

bool Decoder::message(std::string_view bytes, const Schema& s, const std::string& path,
                      nlohmann::json* out) {
  *out = nlohmann::json::object();
  Reader r(bytes);
  Field f;
  std::string err;
  while (!r.done()) {
    if (!r.next(&f, &err)) return fail(path, err);
    if (auto pit = s.protoFields.find(int32_t(f.number)); pit != s.protoFields.end()) {
      if (!field(f, pit->second, s, path, out)) return false;
    } else if (auto eit = s.protoEmbedded.find(int32_t(f.number));
               eit != s.protoEmbedded.end() && f.wire == 2) {
      // An inline-embedded Go struct: its fields are properties of this object in JSON.
      Reader er(f.bytes);
      Field e;
      while (!er.done()) {
        if (!er.next(&e, &err)) return fail(path, err);
        auto nit = eit->second.find(int32_t(e.number));
        if (nit != eit->second.end() && !field(e, nit->second, s, path, out)) return false;
      }
    }
    // Other field numbers are unknown: skipped, like kube's decoder.
  }
  return true;
}

Status decodeError(const std::string& kind, const std::string& version, const std::string& what) {
  if (kind.empty()) return Status::badRequest("unable to decode protobuf body: " + what);
  return Status::badRequest(kind + " in version \"" + version + "\" cannot be handled as a " +
                            kind + ": " + what);
}

}  // namespace

bool looksLikeKubernetesProtobuf(std::string_view body) {
  return body.substr(0, kKubernetesProtobufMagic.size()) == kKubernetesProtobufMagic;
}

Result<nlohmann::json> decodeProtobufMessage(std::string_view bytes, const Schema& schema) {
  try {
    Decoder d;
    nlohmann::json out;
    if (!d.message(bytes, schema, "", &out)) return Status::badRequest("protobuf: " + d.err_);
    return out;
  } catch (const std::exception& e) {
    return Status::badRequest(std::string("protobuf: ") + e.what());
  }
}

Result<nlohmann::json> decodeKubernetesProtobuf(std::string_view body,
                                                const SchemaRegistry& schemas,
                                                const std::string& schemaName) {
  if (!looksLikeKubernetesProtobuf(body)) {
    return Status::badRequest(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]");
  }
  try {
    // runtime.Unknown: typeMeta=1 {apiVersion=1, kind=2}, raw=2, contentEncoding=3,
    // contentType=4.
    Reader env(body.substr(kKubernetesProtobufMagic.size()));
    Field f;
    std::string err, apiVersion, kind, contentEncoding, contentType;
    std::string_view raw;
    while (!env.done()) {
      if (!env.next(&f, &err)) return decodeError("", "", "protobuf envelope: " + err);
      if (f.wire != 2) continue;
      if (f.number == 1) {
        Reader tm(f.bytes);
        Field t;
        while (!tm.done()) {
          if (!tm.next(&t, &err)) return decodeError("", "", "protobuf TypeMeta: " + err);
          if (t.number == 1 && t.wire == 2) apiVersion = std::string(t.bytes);
          if (t.number == 2 && t.wire == 2) kind = std::string(t.bytes);
        }
      } else if (f.number == 2) {
        raw = f.bytes;
      } else if (f.number == 3) {
        contentEncoding = std::string(f.bytes);
      } else if (f.number == 4) {
        contentType = std::string(f.bytes);
      }
    }
    std::string version = apiVersion.substr(apiVersion.find('/') + 1);
    if (!contentEncoding.empty()) {
      return decodeError(kind, version, "unsupported protobuf content encoding \"" +
                                            contentEncoding + "\"");
    }
    if (!contentType.empty() && contentType != kKubernetesProtobufMediaType) {
      return decodeError(kind, version, "unsupported content type \"" + contentType + "\"");
    }
    SchemaPtr schema;
    if (!schemaName.empty()) {
      schema = schemas.find(schemaName);
    } else if (!kind.empty()) {
      std::string group, ver = apiVersion;
      if (auto slash = apiVersion.find('/'); slash != std::string::npos) {
        group = apiVersion.substr(0, slash);
        ver = apiVersion.substr(slash + 1);
      }
      for (const auto& name : schemas.names()) {
        auto s = schemas.find(name);
        if (!s) continue;
        for (const auto& g : s->gvks) {
          if (g.group == group && g.version == ver && g.kind == kind) schema = s;
        }
        if (schema) break;
      }
    }
    if (!schema) {
      return decodeError(kind, version,
                         "no schema for " + (schemaName.empty() ? apiVersion + ", Kind=" + kind
                                                               : schemaName));
    }
    if (schema->protoFields.empty()) {
      return Status::unsupportedMediaType(
          "the body of the request was in an unknown format - accepted media types include: "
          "application/json, application/yaml");
    }
    Decoder d;
    nlohmann::json out;
    if (!d.message(raw, *schema, "", &out)) {
      if (kind.empty() && !schema->gvks.empty()) {
        kind = schema->gvks.front().kind;
        version = schema->gvks.front().version;
      }
      return decodeError(kind, version, "protobuf: " + d.err_);
    }
    // TypeMeta first, like kube's JSON.
    nlohmann::json result = nlohmann::json::object();
    if (!apiVersion.empty()) result["apiVersion"] = apiVersion;
    if (!kind.empty()) result["kind"] = kind;
    for (auto& [k, v] : out.items()) {
      if (k == "apiVersion" || k == "kind") continue;
      result[k] = std::move(v);
    }
    return result;
  } catch (const std::exception& e) {
    return Status::badRequest(std::string("protobuf: ") + e.what());
  }
}

}  // namespace orrery::api
