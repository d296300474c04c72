#pragma once
// Reads a few members of a stored object's JSON text without building the whole document.
//
// The watch cache turns every store event into the object as served: the stored text with
// metadata.resourceVersion set, plus what selectors read (name, namespace, labels, a few
// fields). Parsing the whole object into a DOM and serializing it again cost more than
// anything else the cache did; a scan finds the few values and the place where the
// resourceVersion goes, and parses only those values.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace orrery::apiserver {

/// Where a stored object's text has the two places the watch cache edits: where its
/// metadata's members begin (the served form puts metadata.resourceVersion there) and where
/// metadata.managedFields lies (watchers that strip it cut it out). A scan finds them
/// (scanObject); the API server's writer knows them from writing the text (storedForm).
struct StoredTextLayout {
  /// Offset just past the '{' that opens the top-level "metadata" object.
  size_t metadataBody = 0;
  /// Whether that object has no members.
  bool metadataEmpty = true;
  /// metadata.managedFields, when the metadata has it: where its member starts (its key's
  /// opening quote) and its value ends, the end of the value before it (0: it comes first)
  /// and the start of the member after it (0: it comes last). The scan passes over it anyway;
  /// this spares a watch a second scan to leave it out (managedFieldsRemoval).
  struct MemberSpan {
    bool present = false;
    size_t begin = 0, valueEnd = 0, previousEnd = 0, nextBegin = 0;
  };
  MemberSpan managedFields;
};

struct ScannedObject : StoredTextLayout {
  /// An object holding only the wanted paths that the text has, each value parsed whole
  /// (a wanted "metadata.labels" holds the labels object). "metadata" is always an object.
  nlohmann::json partial = nlohmann::json::object();
};

/// Scans `text`, a JSON object, for the dotted member paths `wanted` (paths of objects
/// nested in objects; no arrays). nullopt when the text is not what the scan handles — not an
/// object, no top-level "metadata" object, an escaped key on the way to a wanted value,
/// metadata already holding a resourceVersion, malformed JSON — and the caller then parses
/// the text whole.
std::optional<ScannedObject> scanObject(std::string_view text, const std::vector<std::string>& wanted);

/// The text with `"resourceVersion":"<revision>"` as the first member of its metadata.
std::string withResourceVersion(std::string_view text, const StoredTextLayout& layout, int64_t revision);

/// In withResourceVersion(text, layout, revision): the span [first, second) whose removal
/// leaves it without metadata.managedFields, and valid JSON (as memberRemoval would cut it);
/// {0, 0} when the metadata has none.
std::pair<size_t, size_t> managedFieldsRemoval(const StoredTextLayout& layout, int64_t revision);

/// A JSON object in a text: where it opens and closes, and each member's key and value span.
struct ObjectSpan {
  struct Member {
    std::string_view key;         // as written (the scan refuses escaped keys)
    size_t begin = 0;             // the key's opening quote
    size_t valueBegin = 0, valueEnd = 0;
  };
  size_t open = 0, close = 0;     // the '{' and the '}'
  std::vector<Member> members;
  const Member* find(std::string_view key) const;
};
/// The object starting at text[at] (after blanks); nullopt if it is not a well-formed object
/// or a key has escapes.
std::optional<ObjectSpan> objectAt(std::string_view text, size_t at);
/// objectAt(text, at), and in the same pass the objects of its members named in `nested`
/// (nestedSpans[i] for nested[i]; nullopt when that member is missing or not an object).
std::optional<ObjectSpan> objectAt(std::string_view text, size_t at, std::span<const std::string_view> nested,
                                   std::vector<std::optional<ObjectSpan>>& nestedSpans);

/// The span [first, second) that takes `member` (one of `object`'s) out of the text with one
/// comma, leaving valid JSON.
std::pair<size_t, size_t> memberRemoval(const ObjectSpan& object, const ObjectSpan::Member& member);

/// In `text`, a JSON object: the span that takes the member `inner` of its top-level object
/// member `outer` (e.g. metadata.managedFields) out, as memberRemoval cuts it; nullopt when
/// there is no such member or the scan does not handle the text (escaped keys, malformed JSON).
std::optional<std::pair<size_t, size_t>> nestedMemberRemoval(std::string_view text, std::string_view outer,
                                                             std::string_view inner);
/// `text` without the span [first, second).
std::string withoutSpan(std::string_view text, std::pair<size_t, size_t> span);
/// withoutSpan(text, nestedMemberRemoval(text, outer, inner)); nullopt when there is no such
/// member or the scan does not handle the text. Trailing text after the object is kept.
std::optional<std::string> withoutMember(std::string_view text, std::string_view outer, std::string_view inner);

/// Puts `condition` into status.conditions of `status` (an object, or null for none yet),
/// replacing every condition of its type, or adding it: both binding paths set PodScheduled so.
void setCondition(nlohmann::json& status, const nlohmann::json& condition);

/// pods/binding on a pod's text, without building the pod: the stored form (no
/// metadata.resourceVersion) with spec.nodeName set to `node` and `condition` (a PodScheduled
/// condition) replacing any PodScheduled condition in status.conditions or added to them.
/// nullopt when the pod is not simply pending and unbound (being deleted, already bound, not
/// of `uid` when that is given) or its text is not plain enough to edit; the caller then takes
/// the whole-object path, which also says what is wrong. `layout` (optional) receives the
/// result's layout, as a scan of it would find it.
std::optional<std::string> bindPodText(std::string_view text, const std::string& node, const nlohmann::json& condition,
                                       const std::string& uid = "", StoredTextLayout* layout = nullptr);

}  // namespace orrery::apiserver
